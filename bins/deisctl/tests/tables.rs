//! The tables deisctl prints, as snapshots.

use deisctl::engine::UnitStatus;
use deisctl::output::units_table;

fn unit(name: &str, state: &str, ports: &[&str], detail: &str) -> UnitStatus {
    UnitStatus {
        unit: name.into(),
        state: state.into(),
        detail: detail.into(),
        ports: ports.iter().map(|p| p.to_string()).collect(),
        host: "node-1".into(),
    }
}

#[test]
fn status_table() {
    let units = vec![
        unit(
            "deis-controller",
            "running",
            &["127.0.0.1:8000->8000/tcp"],
            "Up 3 minutes",
        ),
        unit(
            "deis-etcd",
            "running",
            &["127.0.0.1:4001->2379/tcp"],
            "Up 4 minutes",
        ),
        unit("deis-router@1", "exited", &[], "Exited (0) 2 seconds ago"),
    ];
    insta::assert_snapshot!(units_table(&units));
}

#[test]
fn empty_status_table() {
    insta::assert_snapshot!(units_table(&[]));
}
