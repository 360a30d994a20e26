//! The `Scheduler` conformance suite.

use super::expect_err;
use crate::error::Error;
use crate::model::{Formation, Instance, InstanceState};
use crate::scheduler::{AppSpec, Artifact, InstanceSelector, RunRequest, Scheduler};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a backend needs to run the suite: something it can actually start.
#[derive(Debug, Clone)]
pub struct SchedulerFixture {
    /// An artifact the backend can run.
    pub artifact: Artifact,
    /// Process commands; `web` must listen on `$PORT` and keep running, `worker` must keep
    /// running.
    pub processes: BTreeMap<String, String>,
    /// Whether the backend implements one-off `run`; when false, the suite asserts that
    /// `run` fails with `NotImplemented`.
    pub supports_run: bool,
    /// Whether instances report a `host:port` endpoint once up.
    pub reports_endpoints: bool,
}

impl SchedulerFixture {
    fn spec(&self, app: &str, release: u64, formation: &[(&str, u32)]) -> AppSpec {
        let mut spec = AppSpec::new(app, release);
        spec.artifact = self.artifact.clone();
        spec.processes = self.processes.clone();
        spec.formation = formation
            .iter()
            .map(|(t, n)| (t.to_string(), *n))
            .collect::<Formation>();
        spec.env.insert("DEIS_APP".into(), app.into());
        spec.env
            .insert("DEIS_RELEASE".into(), format!("v{release}"));
        spec
    }
}

/// Runs every check of the suite, each on its own app name prefixed with `prefix`.
pub async fn run_all(scheduler: &dyn Scheduler, fixture: &SchedulerFixture, prefix: &str) {
    apply_converges_and_is_idempotent(scheduler, fixture, &format!("{prefix}converge")).await;
    scale_down_removes_the_newest_first(scheduler, fixture, &format!("{prefix}scale")).await;
    a_new_release_replaces_every_instance(scheduler, fixture, &format!("{prefix}roll")).await;
    restart_targets_the_selection(scheduler, fixture, &format!("{prefix}restart")).await;
    nothing_to_run_is_refused(scheduler, fixture, &format!("{prefix}empty")).await;
    events_are_reported(scheduler, fixture, &format!("{prefix}events")).await;
    one_off_run(scheduler, fixture, &format!("{prefix}run")).await;
}

fn shape(instances: &[Instance]) -> Vec<(String, u32, u64)> {
    instances
        .iter()
        .map(|i| (i.process_type.clone(), i.num, i.release))
        .collect()
}

fn assert_all_up(instances: &[Instance], fixture: &SchedulerFixture) {
    for instance in instances {
        assert_eq!(
            instance.state,
            InstanceState::Up,
            "{} is not up",
            instance.job_name()
        );
        if fixture.reports_endpoints && instance.is_routable() {
            assert!(
                instance.endpoint.is_some(),
                "{} has no endpoint",
                instance.job_name()
            );
        }
    }
}

/// `apply` reaches the formation, reports it through `instances`, and changes nothing the
/// second time.
pub async fn apply_converges_and_is_idempotent(
    scheduler: &dyn Scheduler,
    fixture: &SchedulerFixture,
    app: &str,
) {
    let spec = fixture.spec(app, 2, &[("web", 2), ("worker", 1)]);
    let applied = scheduler.apply(&spec).await.expect("apply");
    let expected = vec![
        ("web".to_string(), 1, 2),
        ("web".to_string(), 2, 2),
        ("worker".to_string(), 1, 2),
    ];
    assert_eq!(shape(&applied), expected);
    assert_all_up(&applied, fixture);
    let listed = scheduler.instances(app).await.unwrap();
    assert_eq!(
        shape(&listed),
        expected,
        "instances() reports what apply made"
    );
    let again = scheduler.apply(&spec).await.expect("apply again");
    assert_eq!(
        again, applied,
        "a second apply of the same spec changes nothing"
    );
    scheduler.remove(app).await.unwrap();
    assert!(scheduler.instances(app).await.unwrap().is_empty());
    scheduler
        .remove(app)
        .await
        .expect("removing a removed app succeeds");
}

/// Scaling down removes the highest numbers; scaling up again reuses the next numbers.
pub async fn scale_down_removes_the_newest_first(
    scheduler: &dyn Scheduler,
    fixture: &SchedulerFixture,
    app: &str,
) {
    scheduler
        .apply(&fixture.spec(app, 2, &[("web", 3)]))
        .await
        .unwrap();
    let down = scheduler
        .apply(&fixture.spec(app, 2, &[("web", 1)]))
        .await
        .unwrap();
    assert_eq!(
        shape(&down),
        [("web".to_string(), 1, 2)],
        "web.2 and web.3 go first"
    );
    let up = scheduler
        .apply(&fixture.spec(app, 2, &[("web", 2)]))
        .await
        .unwrap();
    assert_eq!(
        shape(&up),
        [("web".to_string(), 1, 2), ("web".to_string(), 2, 2)]
    );
    let zero = scheduler
        .apply(&fixture.spec(app, 2, &[("web", 0)]))
        .await
        .unwrap();
    assert!(zero.is_empty(), "scale to zero stops everything");
    scheduler.remove(app).await.unwrap();
}

/// A new release replaces every instance, keeping type and number; a type dropped from
/// the formation is stopped.
pub async fn a_new_release_replaces_every_instance(
    scheduler: &dyn Scheduler,
    fixture: &SchedulerFixture,
    app: &str,
) {
    scheduler
        .apply(&fixture.spec(app, 2, &[("web", 2), ("worker", 1)]))
        .await
        .unwrap();
    let rolled = scheduler
        .apply(&fixture.spec(app, 3, &[("web", 2)]))
        .await
        .unwrap();
    assert_eq!(
        shape(&rolled),
        [("web".to_string(), 1, 3), ("web".to_string(), 2, 3)]
    );
    assert_all_up(&rolled, fixture);
    assert_eq!(
        shape(&scheduler.instances(app).await.unwrap()),
        shape(&rolled)
    );
    scheduler.remove(app).await.unwrap();
}

/// Restart returns the selected instances, which are up again afterwards.
pub async fn restart_targets_the_selection(
    scheduler: &dyn Scheduler,
    fixture: &SchedulerFixture,
    app: &str,
) {
    scheduler
        .apply(&fixture.spec(app, 2, &[("web", 2), ("worker", 1)]))
        .await
        .unwrap();
    let one = InstanceSelector {
        process_type: Some("web".into()),
        num: Some(2),
    };
    let restarted = scheduler.restart(app, &one).await.unwrap();
    assert_eq!(shape(&restarted), [("web".to_string(), 2, 2)]);
    let web = InstanceSelector {
        process_type: Some("web".into()),
        num: None,
    };
    assert_eq!(scheduler.restart(app, &web).await.unwrap().len(), 2);
    assert_eq!(
        scheduler
            .restart(app, &InstanceSelector::all())
            .await
            .unwrap()
            .len(),
        3
    );
    let after = scheduler.instances(app).await.unwrap();
    assert_eq!(after.len(), 3);
    assert_all_up(&after, fixture);
    assert!(scheduler
        .restart("no-such-app-at-all", &InstanceSelector::all())
        .await
        .unwrap()
        .is_empty());
    scheduler.remove(app).await.unwrap();
}

/// A formation with no artifact to run is refused and starts nothing.
pub async fn nothing_to_run_is_refused(
    scheduler: &dyn Scheduler,
    fixture: &SchedulerFixture,
    app: &str,
) {
    let mut spec = fixture.spec(app, 1, &[("web", 1)]);
    spec.artifact = Artifact::None;
    expect_err(
        "apply with no artifact",
        scheduler.apply(&spec).await,
        |e| matches!(e, Error::Precondition { .. }),
    );
    assert!(scheduler.instances(app).await.unwrap().is_empty());
    let mut empty = fixture.spec(app, 1, &[]);
    empty.artifact = Artifact::None;
    assert!(
        scheduler.apply(&empty).await.unwrap().is_empty(),
        "an empty formation needs no artifact"
    );
}

/// Starting and removing instances is reported on the event stream.
pub async fn events_are_reported(scheduler: &dyn Scheduler, fixture: &SchedulerFixture, app: &str) {
    let mut events = scheduler.events();
    scheduler
        .apply(&fixture.spec(app, 2, &[("web", 1)]))
        .await
        .unwrap();
    scheduler.remove(app).await.unwrap();
    let mut saw_up = false;
    let mut saw_gone = false;
    while !(saw_up && saw_gone) {
        let event = super::discovery::with_timeout(Duration::from_secs(10), events.next())
            .await
            .flatten()
            .expect("an instance event");
        if event.instance.app != app {
            continue;
        }
        match event.instance.state {
            InstanceState::Up => saw_up = true,
            InstanceState::Destroyed => {
                assert!(saw_up, "an instance is up before it is destroyed");
                saw_gone = true;
            }
            _ => {}
        }
    }
}

/// One-off runs return output and exit code, or are refused as not implemented.
pub async fn one_off_run(scheduler: &dyn Scheduler, fixture: &SchedulerFixture, app: &str) {
    let request = RunRequest {
        spec: fixture.spec(app, 2, &[]),
        command: "echo hello from $DEIS_APP; exit 3".into(),
    };
    let result = scheduler.run(&request).await;
    if fixture.supports_run {
        let outcome = result.expect("run");
        assert_eq!(outcome.exit_code, 3);
        assert!(
            outcome.output.contains(&format!("hello from {app}")),
            "output: {:?}",
            outcome.output
        );
    } else {
        expect_err("run on a backend without it", result, |e| {
            matches!(e, Error::NotImplemented { .. })
        });
    }
}
