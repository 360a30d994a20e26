//! The `Router` conformance suite.

use crate::discovery::KeyValue;
use crate::discovery::Snapshot;
use crate::route::RouteTable;
use crate::router::Router;

/// A small route table with two apps, a custom domain and an allow-list.
pub fn sample_table(endpoint: &str) -> RouteTable {
    let kv = |key: &str, value: &str, revision| KeyValue {
        key: key.into(),
        value: value.into(),
        mod_revision: revision,
    };
    RouteTable::from_snapshot(&Snapshot {
        revision: 4,
        entries: vec![
            kv("/deis/platform/domain", "conformance.test", 1),
            kv("/deis/services/one/one_v1.web.1", endpoint, 2),
            kv("/deis/domains/www.one.test", "one", 3),
            kv("/deis/config/one/deis_whitelist", "127.0.0.0/8", 4),
        ],
    })
}

/// Runs every check of the suite. `endpoint` is a `host:port` the backend may route to.
pub async fn run_all(router: &dyn Router, endpoint: &str) {
    apply_then_current(router, endpoint).await;
}

/// The table applied is the table in force; applying it again and applying an empty table
/// work.
pub async fn apply_then_current(router: &dyn Router, endpoint: &str) {
    let table = sample_table(endpoint);
    router.apply(&table).await.expect("applying a table");
    assert_eq!(router.current().await.unwrap(), table);
    router
        .apply(&table)
        .await
        .expect("applying the same table again");
    assert_eq!(router.current().await.unwrap(), table);
    let empty = RouteTable::default();
    router.apply(&empty).await.expect("applying an empty table");
    assert_eq!(router.current().await.unwrap(), empty);
    router.apply(&table).await.unwrap();
    assert_eq!(router.current().await.unwrap(), table);
}
