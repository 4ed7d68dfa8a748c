//! The `test-node` binary and its harness, `NodeProcess`: how a child node starts and
//! stops.

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use tests::node_args::NodeArgs;
use tests::process::{NodeProcess, ProcessError};

/// The `test-node` binary of this crate.
fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_test-node"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_reports_the_os_assigned_loopback_address_it_listens_on() {
    let child = NodeProcess::spawn(program(), &NodeArgs::new("child", "s3cret"))
        .await
        .expect("the child node starts");
    assert!(child.addr().ip().is_loopback(), "{}", child.addr());
    assert_ne!(child.addr().port(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_its_stdin_stops_the_child_node_cleanly() {
    let mut child = NodeProcess::spawn(program(), &NodeArgs::new("child", "s3cret"))
        .await
        .expect("the child node starts");
    let status = child
        .stop(Duration::from_secs(5))
        .await
        .expect("exits after stdin closes");
    assert!(status.success(), "{status}; stderr:\n{}", child.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_whose_address_is_taken_exits_early_and_says_why() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let args = NodeArgs::new("child", "s3cret").listen(addr);
    match NodeProcess::spawn(program(), &args).await {
        Err(ProcessError::ExitedEarly { stderr, .. }) => {
            assert!(stderr.contains("cannot listen on"), "{stderr}");
        }
        other => panic!("expected an early exit, got {other:?}"),
    }
}
