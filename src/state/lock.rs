use super::StateError;
use std::fs::File;
use std::path::PathBuf;

/// An exclusive advisory lock on one profile, held for the life of the value.
///
/// Commands that change a profile (start, stop, pause, unpause, delete, node add) take it; a
/// second such command on the same profile fails at once with GUEST_PROFILE_BUSY instead of
/// racing. Different profiles have different locks, so they proceed in parallel. The kernel
/// drops the lock when the process dies, so a crash never leaves a profile locked.
///
/// The lock file goes away with the lock when the profile does not exist (a `delete`, a failed
/// first `start`, a command on a mistyped name), so lock files do not pile up; a process that
/// opened the file just before it went is told by [`ProfileLock::acquire`]'s inode check and
/// opens the new one.
#[derive(Debug)]
pub struct ProfileLock {
    file: File,
    path: PathBuf,
    /// The profile file: when it does not exist on release, the lock file is removed.
    profile_file: PathBuf,
}

impl ProfileLock {
    /// Takes the lock without waiting.
    pub fn acquire(home: &super::Home, profile: &str) -> anyhow::Result<ProfileLock> {
        let path = home.lock_file(profile);
        if let Some(dir) = path.parent() {
            super::create_private_dir(dir)
                .map_err(|e| StateError::file("cannot create", dir, e))?;
        }
        loop {
            let file = open_lock_file(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StateError::Busy {
                        message: format!(
                            "profile \"{profile}\" is busy: another minik command is working on it"
                        ),
                        advice: format!(
                            "Wait for it to finish and retry (lock: {}).",
                            path.display()
                        ),
                    }
                    .into());
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(StateError::file("cannot lock", &path, e).into());
                }
            }
            // The holder before us may have removed the file on release: then our lock is on
            // an orphaned inode and another process could lock a new file. Go again.
            if same_file(&file, &path) {
                return Ok(ProfileLock {
                    file,
                    path,
                    profile_file: home.profile_file(profile),
                });
            }
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for ProfileLock {
    fn drop(&mut self) {
        // Still held here: nobody else can be between their lock and their inode check.
        if !self.profile_file.exists() {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &std::path::Path) -> Result<File, StateError> {
    let mut options = File::options();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| StateError::file("cannot open lock file", path, e))
}

/// Whether the open `file` is the file at `path` now.
fn same_file(file: &File, path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
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

    #[test]
    fn a_lock_of_a_profile_that_does_not_exist_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let home = super::super::Home::at(dir.path());
        let lock = ProfileLock::acquire(&home, "typo").unwrap();
        let path = lock.path().to_path_buf();
        assert!(path.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode(&path) & 0o777, 0o600);
            assert_eq!(mode(path.parent().unwrap()) & 0o777, 0o700);
        }
        drop(lock);
        assert!(!path.exists(), "lock file of a missing profile removed");
        // A profile that exists keeps its lock file (nothing to gain from removing it).
        crate::state::atomic::write_atomic(&home.profile_file("real"), b"{}", 0o600).unwrap();
        let lock = ProfileLock::acquire(&home, "real").unwrap();
        let path = lock.path().to_path_buf();
        drop(lock);
        assert!(path.exists());
    }
}
