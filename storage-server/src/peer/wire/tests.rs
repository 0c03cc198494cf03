use super::*;

async fn decode_request(bytes: &[u8]) -> Result<Option<Request>, WireError> {
    let mut reader = bytes;
    read_request(&mut reader).await
}

async fn decode_response(bytes: &[u8]) -> Result<ResponseHeader, WireError> {
    let mut reader = bytes;
    read_response(&mut reader).await
}

fn sample_request() -> Request {
    Request {
        kind: RequestKind::Get,
        chunk_id: "chunk-0_A".into(),
        offset: 1 << 40,
        length: 12345,
        wait_ms: 60_000,
    }
}

fn sample_response() -> ResponseHeader {
    ResponseHeader {
        status: Status::Ok,
        chunk_size: 8 << 20,
        chunk_crc32c: 0xdead_beef,
        length: 4096,
        crc32c: 0x1234_5678,
        message: String::new(),
    }
}

#[tokio::test]
async fn request_round_trips() {
    let request = sample_request();
    let bytes = request.encode();
    assert_eq!(bytes.len(), REQUEST_FIXED + request.chunk_id.len());
    assert_eq!(&bytes[..5], b"DFSP\x02");
    assert_eq!(
        decode_request(&bytes).await.expect("decodes"),
        Some(request)
    );
    let whole = Request::whole("x", 0);
    assert_eq!((whole.offset, whole.length), (0, TO_END));
    assert_eq!(
        decode_request(&whole.encode()).await.expect("decodes"),
        Some(whole)
    );
}

#[tokio::test]
async fn requests_follow_each_other_and_end_cleanly() {
    let mut bytes = sample_request().encode();
    bytes.extend(Request::whole("second", 5).encode());
    let mut reader = bytes.as_slice();
    let first = read_request(&mut reader).await.expect("first");
    let second = read_request(&mut reader).await.expect("second");
    assert_eq!(first.map(|r| r.chunk_id), Some("chunk-0_A".to_owned()));
    assert_eq!(second.map(|r| r.wait_ms), Some(5));
    assert!(matches!(read_request(&mut reader).await, Ok(None)));
}

#[tokio::test]
async fn response_round_trips() {
    let header = sample_response();
    let bytes = header.encode();
    assert_eq!(bytes.len(), RESPONSE_FIXED);
    assert_eq!(decode_response(&bytes).await.expect("decodes"), header);

    let error = ResponseHeader::error(Status::NotFound, "chunk x not found");
    assert_eq!(
        decode_response(&error.encode()).await.expect("decodes"),
        error
    );
    // Long messages are cut at a character boundary, and still decode.
    let long = ResponseHeader::error(Status::Internal, &"é".repeat(MAX_MESSAGE_LEN));
    assert!(long.message.len() <= MAX_MESSAGE_LEN);
    assert_eq!(
        decode_response(&long.encode()).await.expect("decodes"),
        long
    );
}

#[tokio::test]
async fn bad_magic_and_version_are_refused() {
    let mut bytes = sample_request().encode();
    bytes[0] = b'X';
    assert!(matches!(
        decode_request(&bytes).await,
        Err(WireError::BadMagic(m)) if &m == b"XFSP"
    ));
    // Version 1, which had no handshake, is not spoken any more.
    let mut bytes = sample_request().encode();
    bytes[4] = 1;
    assert!(matches!(
        decode_request(&bytes).await,
        Err(WireError::UnsupportedVersion(1))
    ));
    let mut bytes = sample_response().encode();
    bytes[4] = 0;
    assert!(matches!(
        decode_response(&bytes).await,
        Err(WireError::UnsupportedVersion(0))
    ));
    // An HTTP request sent to the peer port is not mistaken for a frame.
    assert!(matches!(
        decode_request(b"GET /chunks/x HTTP/1.1\r\n\r\n").await,
        Err(WireError::BadMagic(_))
    ));
}

#[tokio::test]
async fn bad_fields_are_refused() {
    let mut bytes = sample_request().encode();
    bytes[5] = 9;
    assert!(matches!(
        decode_request(&bytes).await,
        Err(WireError::BadKind(9))
    ));
    let mut bytes = Request::whole("a/b", 0).encode();
    assert!(matches!(
        decode_request(&bytes).await,
        Err(WireError::BadChunkId(_))
    ));
    bytes[6] = 0;
    assert!(matches!(
        decode_request(&bytes).await,
        Err(WireError::BadChunkId(_))
    ));
    let mut bytes = sample_response().encode();
    bytes[5] = 200;
    assert!(matches!(
        decode_response(&bytes).await,
        Err(WireError::BadStatus(200))
    ));
    let mut bytes = sample_response().encode();
    bytes[6..8].copy_from_slice(&2000u16.to_be_bytes());
    assert!(matches!(
        decode_response(&bytes).await,
        Err(WireError::MessageTooLong(2000))
    ));
}

#[tokio::test]
async fn truncated_frames_are_errors() {
    let request = sample_request().encode();
    for cut in 1..request.len() {
        let result = decode_request(&request[..cut]).await;
        assert!(
            matches!(result, Err(WireError::Truncated)),
            "cut at {cut}: {result:?}"
        );
    }
    assert!(matches!(decode_request(&[]).await, Ok(None)));
    let response = ResponseHeader::error(Status::BadRequest, "nope").encode();
    for cut in 0..response.len() {
        let result = decode_response(&response[..cut]).await;
        assert!(
            matches!(result, Err(WireError::Truncated)),
            "cut at {cut}: {result:?}"
        );
    }
}

#[test]
fn layout_matches_protocol_md() {
    let request = Request {
        kind: RequestKind::Get,
        chunk_id: "id".into(),
        offset: 1,
        length: 2,
        wait_ms: 3,
    }
    .encode();
    assert_eq!(&request[..8], b"DFSP\x02\x01\x02\x00");
    assert_eq!(request[8..16], 1u64.to_be_bytes());
    assert_eq!(request[16..24], 2u64.to_be_bytes());
    assert_eq!(request[24..28], 3u32.to_be_bytes());
    assert_eq!(&request[28..], b"id");

    let response = ResponseHeader {
        status: Status::RangeNotSatisfiable,
        chunk_size: 1,
        length: 2,
        chunk_crc32c: 3,
        crc32c: 4,
        message: "m".into(),
    }
    .encode();
    assert_eq!(&response[..8], b"DFSP\x02\x03\x00\x01");
    assert_eq!(response[8..16], 1u64.to_be_bytes());
    assert_eq!(response[16..24], 2u64.to_be_bytes());
    assert_eq!(response[24..28], 3u32.to_be_bytes());
    assert_eq!(response[28..32], 4u32.to_be_bytes());
    assert_eq!(&response[32..], b"m");
}
