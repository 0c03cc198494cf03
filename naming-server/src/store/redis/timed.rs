//! The store's connection, timed: every round trip to Redis (one command,
//! or a pipeline) goes to the `dfs_redis_command_duration_seconds`
//! histogram by command, and every failed one to `dfs_redis_errors_total`.

use std::time::Instant;

use redis::aio::ConnectionLike;
use redis::{Arg, Cmd, Pipeline, RedisFuture, Value};

use super::backend::Backend;
use crate::metrics::{CommandLabels, RedisMetrics};

/// A [`Backend`] (a handle: cheap to clone) that times what it sends.
#[derive(Clone)]
pub struct TimedConnection {
    inner: Backend,
    metrics: RedisMetrics,
}

impl TimedConnection {
    pub fn new(inner: Backend, metrics: RedisMetrics) -> Self {
        Self { inner, metrics }
    }

    fn record<T>(&self, command: String, started: Instant, result: &redis::RedisResult<T>) {
        self.metrics
            .commands
            .get_or_create(&CommandLabels { command })
            .observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.metrics.errors.inc();
        }
    }
}

/// The name of `cmd` (`EVALSHA`, `HGETALL`, …): its first argument.
fn command_name(cmd: &Cmd) -> String {
    match cmd.args_iter().next() {
        Some(Arg::Simple(name)) => String::from_utf8_lossy(name).to_ascii_uppercase(),
        _ => "unknown".to_owned(),
    }
}

impl ConnectionLike for TimedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.inner.req_packed_command(cmd).await;
            self.record(command_name(cmd), started, &result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self
                .inner
                .req_packed_commands(pipeline, offset, count)
                .await;
            self.record("pipeline".to_owned(), started, &result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
