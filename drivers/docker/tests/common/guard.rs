//! Cleanup for real-engine tests, shared by the docker and podman driver crates (podman's
//! tests include this file with `#[path]`).

use minik_driver_api::{Driver, DriverError};

/// Deletes a profile's nodes, volumes and network when dropped, also when the test panicked,
/// through a fresh connection made by `connect`.
pub struct ProfileGuard<D: Driver + 'static> {
    profile: String,
    connect: fn() -> Result<D, DriverError>,
}

impl<D: Driver + 'static> ProfileGuard<D> {
    pub fn with(profile: &str, connect: fn() -> Result<D, DriverError>) -> ProfileGuard<D> {
        ProfileGuard {
            profile: profile.to_string(),
            connect,
        }
    }
}

impl<D: Driver + 'static> Drop for ProfileGuard<D> {
    fn drop(&mut self) {
        let profile = self.profile.clone();
        let connect = self.connect;
        // Drop cannot await; a fresh runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(d) = connect()
                    && let Err(e) = d.delete_profile(&profile).await
                {
                    eprintln!("cleanup of profile {profile} failed: {e}");
                }
            });
        })
        .join();
    }
}
