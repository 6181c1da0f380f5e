//! A test that fails while it holds a testbed still deletes the testbed's vhosts: failed runs
//! leave no `aswt-*` vhost on the shared broker.

use asw_amqp::Management;
use asw_e2e::testbed_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_that_panics_leaves_no_vhost_behind() {
    let (tb, _dir) = testbed_with(&["VN", "TH"], |_| {}).await;
    let options = tb.options().clone();
    let management = Management::new(&options.management_url, &options.admin.0, &options.admin.1);
    let vhosts: Vec<String> = options
        .countries
        .iter()
        .map(|&s| options.vhost(s))
        .collect();
    let exist = |management: Management, vhosts: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            vhosts
                .iter()
                .map(|v| management.queues(v).is_ok())
                .collect::<Vec<bool>>()
        })
    };
    let before = exist(management.clone(), vhosts.clone())
        .await
        .expect("join");
    assert_eq!(before, [true, true], "{vhosts:?} made");

    let failed = tokio::spawn(async move {
        let _held = tb;
        panic!("a failing test");
    })
    .await;
    assert!(failed.expect_err("it panicked").is_panic());

    let after = exist(management, vhosts.clone()).await.expect("join");
    assert_eq!(after, [false, false], "{vhosts:?} deleted on the way out");
}
