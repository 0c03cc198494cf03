//! Lua scripts: each touches the keys of one slot only (declared in KEYS,
//! but for [`NODES`], which reads the node hashes named by the node set in
//! its slot), so they also run on Redis Cluster.

/// KEYS: name, file. ARGV: field/value pairs of the file hash.
/// Returns 0 when a committed file already has the name.
pub const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV))
return 1
";

/// KEYS: file, alloc. ARGV: chunk id, allocation JSON.
/// Returns 'ok', or the state that forbids it ('missing', 'committed', 'expired').
pub const ALLOCATE: &str = r"
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if state ~= 'pending' then return state end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 'ok'
";

/// KEYS: file, name, chunks, alloc. ARGV: file id, then index/JSON pairs.
/// Claims the name, stores the chunks and commits the file all at once.
/// Returns {'ok', allocations as chunk id/JSON pairs...} or {reason}
/// ('missing', 'committed', 'expired', 'taken'), changing nothing.
pub const COMMIT: &str = r"
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state ~= 'pending' then return {state} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'taken'} end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'committed')
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
local allocs = redis.call('HGETALL', KEYS[4])
redis.call('DEL', KEYS[4])
table.insert(allocs, 1, 'ok')
return allocs
";

/// KEYS: file, name, chunks, alloc. ARGV: file id.
/// Deletes every key of the file (the name only if it is this file's).
/// Returns {state, committed chunk JSONs, allocation chunk id/JSON pairs}
/// ('missing' as the state when there is no such file).
pub const DELETE: &str = r"
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', {}, {}} end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
local chunks = redis.call('HVALS', KEYS[3])
local allocs = redis.call('HGETALL', KEYS[4])
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
return {state, chunks, allocs}
";

/// KEYS: expiry zset. ARGV: now ms, lease end ms, batch size.
/// Claims expired ids by pushing their expiry to the lease end: only one
/// reaper gets each id, and one that dies mid-way is retried after the lease.
pub const CLAIM_EXPIRED: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
return ids
";

/// KEYS: file, alloc. Marks a pending file expired (so no finalize or
/// allocation can succeed any more) and returns {'expired', its allocations
/// as chunk id/JSON pairs...}; {'committed', name} or {'missing'} otherwise.
pub const EXPIRE: &str = r"
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state == 'committed' then return {'committed', redis.call('HGET', KEYS[1], 'name')} end
redis.call('HSET', KEYS[1], 'state', 'expired')
local reply = redis.call('HGETALL', KEYS[2])
table.insert(reply, 1, 'expired')
return reply
";

/// KEYS: file, alloc. Deletes an expired file's keys (never a committed one).
pub const PURGE_EXPIRED: &str = r"
if redis.call('HGET', KEYS[1], 'state') == 'expired' then redis.call('DEL', KEYS[1], KEYS[2]) end
return 1
";

/// KEYS: node, trash, suspects. ARGV: now ms, capacity, free, chunk count,
/// full (1 or 0), quarantined count, peer send and receive rates, peer
/// send-rate average, max, deleted ids... Returns {up to max
/// chunk ids to delete, up to max suspect chunk ids to verify (taken out of
/// the set)}, or nil for an unknown node.
pub const HEARTBEAT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'last_heartbeat_ms', ARGV[1], 'capacity_bytes', ARGV[2],
  'free_bytes', ARGV[3], 'chunk_count', ARGV[4], 'full', ARGV[5], 'quarantined_chunks', ARGV[6],
  'peer_send_bytes_per_sec', ARGV[7], 'peer_receive_bytes_per_sec', ARGV[8],
  'peer_send_rate_bytes_per_sec', ARGV[9])
for i = 11, #ARGV do redis.call('SREM', KEYS[2], ARGV[i]) end
return {redis.call('SRANDMEMBER', KEYS[2], ARGV[10]), redis.call('SPOP', KEYS[3], ARGV[10])}
";

/// KEYS: node, trash, suspects, node set, repair flag. ARGV: node id, the
/// time (ms) from which a heartbeat means the node is alive. Removes a dead
/// node, its trash and suspects, and asks for a repair scan. Returns
/// 'forgotten', 'missing' or 'alive' (changing nothing).
pub const FORGET_NODE: &str = r"
local last = redis.call('HGET', KEYS[1], 'last_heartbeat_ms')
if not last then return 'missing' end
if tonumber(last) >= tonumber(ARGV[2]) then return 'alive' end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('SET', KEYS[5], '1')
return 'forgotten'
";

/// KEYS: handled lost nodes, repair flag, scan lease. ARGV: lease ms, the
/// number n of lost node ids, those n ids, then ids of live nodes. Live
/// nodes leave the handled set (a later loss counts again); one that was
/// in it came back, so a scan is asked for (its chunks may now have more
/// replicas than they need). When a lost
/// node is not handled yet, or a scan was asked for, and no scan holds the
/// lease: takes it, clears the flag and returns the unhandled lost ids
/// (maybe none). Otherwise nil.
pub const CLAIM_REPAIR: &str = r"
local n = tonumber(ARGV[2])
local returned = false
for i = 3 + n, #ARGV do
  if redis.call('SREM', KEYS[1], ARGV[i]) == 1 then returned = true end
end
if returned then redis.call('SET', KEYS[2], '1') end
local fresh = {}
for i = 3, 2 + n do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then table.insert(fresh, ARGV[i]) end
end
if #fresh == 0 and redis.call('EXISTS', KEYS[2]) == 0 then return false end
if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[1]) then return false end
redis.call('DEL', KEYS[2])
return fresh
";

/// KEYS: handled lost nodes, repair flag, scan lease. ARGV: 'done' or
/// 'retry', then lost node ids the scan covered. Done: they are handled.
/// Retry: the flag is set again. The lease is released either way.
pub const FINISH_REPAIR: &str = r"
if ARGV[1] == 'done' then
  for i = 2, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
else
  redis.call('SET', KEYS[2], '1')
end
redis.call('DEL', KEYS[3])
return 1
";

/// KEYS: file, chunks. ARGV: node ids. Adds the nodes to every chunk's
/// `nodes` of a committed file, each once, and raises the file's
/// replication factor to the copies every chunk now has (a distributed
/// file is meant to be on all those nodes; repair must not trim it).
pub const ADD_FILE_REPLICAS: &str = r"
if redis.call('HGET', KEYS[1], 'state') ~= 'committed' then return 0 end
local all = redis.call('HGETALL', KEYS[2])
local fewest = nil
for i = 1, #all, 2 do
  local chunk = cjson.decode(all[i + 1])
  local held = {}
  for _, node in ipairs(chunk.nodes) do held[node] = true end
  local changed = false
  for _, node in ipairs(ARGV) do
    if not held[node] then table.insert(chunk.nodes, node); held[node] = true; changed = true end
  end
  if changed then redis.call('HSET', KEYS[2], all[i], cjson.encode(chunk)) end
  if not fewest or #chunk.nodes < fewest then fewest = #chunk.nodes end
end
local replication = tonumber(redis.call('HGET', KEYS[1], 'replication'))
if fewest and fewest > replication then redis.call('HSET', KEYS[1], 'replication', fewest) end
return 1
";

/// KEYS: file, chunks. ARGV: index, chunk id, edit, then its arguments:
/// `add` node ids (each once), `remove` node ids, `bad` node id and
/// problem (the node leaves `nodes` and joins `bad`), `clear_bad`. Changes
/// chunk `index` if the file is committed and that chunk still has this
/// id. Returns 1 when something changed, 2 when the edit was already so,
/// 0 when the file or chunk is gone.
pub const EDIT_REPLICAS: &str = r"
if redis.call('HGET', KEYS[1], 'state') ~= 'committed' then return 0 end
local json = redis.call('HGET', KEYS[2], ARGV[1])
if not json then return 0 end
local chunk = cjson.decode(json)
if chunk.chunk_id ~= ARGV[2] then return 0 end
local edit = ARGV[3]
local before = #chunk.nodes
if edit == 'add' then
  local held = {}
  for _, node in ipairs(chunk.nodes) do held[node] = true end
  for i = 4, #ARGV do
    if not held[ARGV[i]] then table.insert(chunk.nodes, ARGV[i]); held[ARGV[i]] = true end
  end
  if #chunk.nodes == before then return 2 end
elseif edit == 'remove' or edit == 'bad' then
  local drop = {}
  local last = edit == 'bad' and 4 or #ARGV
  for i = 4, last do drop[ARGV[i]] = true end
  local kept = {}
  for _, node in ipairs(chunk.nodes) do
    if not drop[node] then table.insert(kept, node) end
  end
  if #kept == before then return 2 end
  chunk.nodes = kept
  if edit == 'bad' then
    local bad = chunk.bad or {}
    table.insert(bad, {node_id = ARGV[4], problem = ARGV[5]})
    chunk.bad = bad
  end
elseif edit == 'clear_bad' then
  if not chunk.bad or next(chunk.bad) == nil then return 2 end
  chunk.bad = nil
else
  return redis.error_reply('unknown replica edit ' .. edit)
end
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(chunk))
return 1
";

/// KEYS: node set. ARGV: the node hash key prefix (`dfs:{nodes}:node:`).
/// Every registered node as {id, its hash as field/value pairs}, read at
/// once: the node directory in one round trip, whatever the number of
/// nodes. The node hashes are not in KEYS (their ids are only known
/// inside), but share the set's hash tag, hence its slot.
pub const NODES: &str = r"
local reply = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    local fields = redis.call('HGETALL', ARGV[1] .. id)
    if #fields > 0 then table.insert(reply, {id, fields}) end
end
return reply
";
