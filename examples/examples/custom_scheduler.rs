//! A third-party `Scheduler` backend: `ShardedScheduler` spreads apps over several inner
//! schedulers (say, one per cluster) by a stable hash of the app name, and passes the
//! scheduler conformance suite like any built-in backend.
//!
//! Run it with `cargo run -p deis-examples --example custom_scheduler`.

use async_trait::async_trait;
use deis_core::conformance::scheduler::{run_all, SchedulerFixture};
use deis_core::memory::MemoryScheduler;
use deis_core::model::Instance;
use deis_core::scheduler::{
    AppSpec, Artifact, InstanceEvent, InstanceSelector, RunOutcome, RunRequest,
};
use deis_core::{DynScheduler, Result, Scheduler};
use futures::stream::{BoxStream, SelectAll};
use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Places each app on one of several inner schedulers, always the same one for an app.
#[derive(Debug)]
struct ShardedScheduler {
    shards: Vec<DynScheduler>,
}

impl ShardedScheduler {
    fn shard(&self, app: &str) -> &DynScheduler {
        let mut hasher = DefaultHasher::new();
        app.hash(&mut hasher);
        &self.shards[(hasher.finish() % self.shards.len() as u64) as usize]
    }
}

#[async_trait]
impl Scheduler for ShardedScheduler {
    fn backend(&self) -> &'static str {
        "sharded"
    }

    async fn apply(&self, spec: &AppSpec) -> Result<Vec<Instance>> {
        self.shard(&spec.app).apply(spec).await
    }

    async fn instances(&self, app: &str) -> Result<Vec<Instance>> {
        self.shard(app).instances(app).await
    }

    async fn restart(&self, app: &str, selector: &InstanceSelector) -> Result<Vec<Instance>> {
        self.shard(app).restart(app, selector).await
    }

    async fn run(&self, request: &RunRequest) -> Result<RunOutcome> {
        self.shard(&request.spec.app).run(request).await
    }

    async fn remove(&self, app: &str) -> Result<()> {
        self.shard(app).remove(app).await
    }

    fn events(&self) -> BoxStream<'static, InstanceEvent> {
        let mut all = SelectAll::new();
        for shard in &self.shards {
            all.push(shard.events());
        }
        Box::pin(all)
    }
}

fn sharded() -> ShardedScheduler {
    let shards: Vec<DynScheduler> = (0..3)
        .map(|_| Arc::new(MemoryScheduler::new()) as DynScheduler)
        .collect();
    ShardedScheduler { shards }
}

fn fixture() -> SchedulerFixture {
    SchedulerFixture {
        artifact: Artifact::Image {
            name: "example/app:v1".into(),
        },
        processes: BTreeMap::from([
            ("web".into(), "./server".into()),
            ("worker".into(), "./work".into()),
        ]),
        // The inner in-memory schedulers do not implement one-off runs; the suite asserts
        // that the refusal is reported, not hidden.
        supports_run: false,
        reports_endpoints: false,
    }
}

#[tokio::main]
async fn main() {
    run_all(&sharded(), &fixture(), "sharded-").await;
    println!("ShardedScheduler passes the scheduler conformance suite");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sharded_scheduler_passes_the_conformance_suite() {
        run_all(&sharded(), &fixture(), "sharded-").await;
    }

    #[tokio::test]
    async fn an_app_always_lands_on_the_same_shard() {
        let scheduler = sharded();
        let mut spec = AppSpec::new("stable-app", 1);
        spec.artifact = fixture().artifact;
        spec.formation.insert("web".into(), 2);
        scheduler.apply(&spec).await.unwrap();
        let holders: Vec<usize> =
            futures::future::join_all(scheduler.shards.iter().map(|s| s.instances("stable-app")))
                .await
                .into_iter()
                .map(|r| r.unwrap().len())
                .collect();
        assert_eq!(holders.iter().filter(|n| **n > 0).count(), 1);
        assert_eq!(holders.iter().sum::<usize>(), 2);
    }
}
