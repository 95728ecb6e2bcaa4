//! The docker runner against a real Docker Engine: the `Runner` contract of
//! `minik_driver_api::contract` (exit codes, output streams, stdin and its EOF, tty, env, file
//! copies), plus what is docker's own (the node's `container` variable, a node that does not
//! exist).

mod common;

use common::*;
use minik_driver_api::{Driver, DriverError, ExecRequest, NullObserver, Role, Runner, contract};

#[tokio::test]
async fn exec_and_files() {
    let driver = driver().await;
    let image = test_image(&driver).await;
    let profile = unique_profile("run");
    let _guard = ProfileGuard::new(&profile);
    let spec = node(&profile, 0, Role::ControlPlane);
    driver
        .create_node(&request(&profile, &image), &spec, &NullObserver)
        .await
        .unwrap();
    let runner = driver.runner(&spec.name);
    assert_eq!(runner.node(), spec.name);

    contract::check(&runner).await;

    // The node's own environment is kept beside the request's.
    let mut request = ExecRequest::new(["sh", "-c", "echo \"$FOO|$container\""]);
    request.env = vec!["FOO=bar baz".into()];
    assert_eq!(
        runner.exec(request).await.unwrap().stdout_str(),
        "bar baz|docker\n"
    );

    // A node that does not exist.
    let ghost = driver.runner(&format!("{profile}-ghost"));
    assert!(matches!(
        ghost.copy_to("/etc/x", b"x", 0o644).await,
        Err(DriverError::NodeNotFound { .. })
    ));
    assert!(matches!(
        ghost.read_file("/etc/hostname").await,
        Err(DriverError::NodeNotFound { .. })
    ));

    driver.delete_profile(&profile).await.unwrap();
}
