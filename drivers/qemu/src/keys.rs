//! SSH keys, made with the system `ssh-keygen` (it comes with the `ssh` client the runner
//! needs anyway): the profile's login key pair and each node's host key.

use minik_driver_api::DriverError;
use std::path::Path;
use std::process::Stdio;

/// Creates an ed25519 key pair at `path` and `path.pub` (no passphrase), unless `path` exists.
pub async fn ensure_keypair(path: &Path, comment: &str) -> Result<(), DriverError> {
    if path.is_file() && pub_path(path).is_file() {
        return Ok(());
    }
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(pub_path(path));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| DriverError::io(format!("create {}", dir.display()), e))?;
    }
    let out = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| DriverError::io("run ssh-keygen (is openssh-client installed?)", e))?;
    if !out.status.success() {
        return Err(DriverError::engine(
            format!("ssh-keygen -f {}", path.display()),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

/// `path.pub`, the way ssh-keygen names it (`id_ed25519` → `id_ed25519.pub`).
pub fn pub_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    s.into()
}

/// The public key line (`TYPE BASE64 COMMENT`) of the key pair at `path`.
pub fn read_public(path: &Path) -> Result<String, DriverError> {
    let p = pub_path(path);
    let text = std::fs::read_to_string(&p)
        .map_err(|e| DriverError::io(format!("read {}", p.display()), e))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
        .ok_or_else(|| DriverError::engine(format!("read {}", p.display()), "empty key file"))
}

/// A known_hosts line for `alias` (matched through `HostKeyAlias`) and a public key line.
pub fn known_hosts_line(alias: &str, public_key: &str) -> String {
    let mut fields = public_key.split_whitespace();
    let kind = fields.next().unwrap_or_default();
    let key = fields.next().unwrap_or_default();
    format!("{alias} {kind} {key}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_lines() {
        assert_eq!(
            known_hosts_line("p-m02", "ssh-ed25519 AAAAxyz root@build\n"),
            "p-m02 ssh-ed25519 AAAAxyz\n"
        );
        assert_eq!(
            pub_path(Path::new("/a/id_ed25519")),
            Path::new("/a/id_ed25519.pub")
        );
    }

    #[tokio::test]
    async fn makes_a_key_pair_once() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k/id_ed25519");
        ensure_keypair(&key, "minik@test").await.unwrap();
        let public = read_public(&key).unwrap();
        assert!(public.starts_with("ssh-ed25519 "), "{public}");
        assert!(public.ends_with(" minik@test"), "{public}");
        ensure_keypair(&key, "minik@test").await.unwrap();
        assert_eq!(read_public(&key).unwrap(), public, "kept");
    }
}
