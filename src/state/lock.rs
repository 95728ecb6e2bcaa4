use crate::errors::{GUEST_PROFILE_BUSY, HOST_FILES, fail, fail_with};
use std::fs::File;
use std::path::PathBuf;

/// An exclusive advisory lock on one profile, held for the life of the value.
///
/// Commands that change a profile (start, stop, pause, unpause, delete, node add) take it; a
/// second such command on the same profile fails at once with GUEST_PROFILE_BUSY instead of
/// racing. Different profiles have different locks, so they proceed in parallel. The kernel
/// drops the lock when the process dies, so a crash never leaves a profile locked.
#[derive(Debug)]
pub struct ProfileLock {
    _file: File,
    path: PathBuf,
}

impl ProfileLock {
    /// Takes the lock without waiting.
    pub fn acquire(home: &super::Home, profile: &str) -> anyhow::Result<ProfileLock> {
        let path = home.lock_file(profile);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(&HOST_FILES, format!("cannot create {}: {e}", dir.display())))?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                fail(
                    &HOST_FILES,
                    format!("cannot open lock file {}: {e}", path.display()),
                )
            })?;
        match file.try_lock() {
            Ok(()) => Ok(ProfileLock { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(fail_with(
                &GUEST_PROFILE_BUSY,
                format!("profile \"{profile}\" is busy: another minik command is working on it"),
                format!(
                    "Wait for it to finish and retry (lock: {}).",
                    path.display()
                ),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(fail(
                &HOST_FILES,
                format!("cannot lock {}: {e}", path.display()),
            )),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::classify;

    #[test]
    fn second_lock_on_same_profile_is_busy_other_profile_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let home = super::super::Home::at(dir.path());
        let first = ProfileLock::acquire(&home, "a").unwrap();
        let err = ProfileLock::acquire(&home, "a").unwrap_err();
        assert_eq!(classify(&err).0.id, "GUEST_PROFILE_BUSY");
        let _other = ProfileLock::acquire(&home, "b").unwrap();
        drop(first);
        ProfileLock::acquire(&home, "a").unwrap();
    }
}
