//! The secure-channel options every subcommand shares, and the identity file behind them.
//!
//! A node is secure unless given `--insecure`: its identity (the 32 secret bytes of its static
//! key) lives in `--identity PATH`, by default `$XDG_CONFIG_HOME/openp2p/identity` or
//! `$HOME/.config/openp2p/identity`, created with mode 0600 on first use. Each subcommand prints
//! `identity: <64 hex>` first: the key others pin to reach it.

use crate::error::{Failure, Result};
use clap::Args;
use openp2p_tokio::{Allow, Config, Identity, PeerKey, SecureConfig, MIN_SECURE_SEGMENT_SIZE};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Size of an identity file: the secret key and nothing else.
const SECRET_LEN: usize = 32;

/// Options of the secure channel, in every subcommand.
#[derive(Debug, Args)]
pub struct SecureArgs {
    /// Plaintext TCP: no handshake, no encryption, no identity (e.g. to talk to `nc`).
    #[arg(long)]
    pub insecure: bool,
    /// This node's secret key file (32 bytes; created with mode 0600 on first use)
    /// [default: $XDG_CONFIG_HOME/openp2p/identity, else ~/.config/openp2p/identity].
    #[arg(long, value_name = "PATH", conflicts_with = "insecure")]
    pub identity: Option<PathBuf>,
    /// Seconds a connection has to finish the secure handshake before it is dropped
    /// [default: 10].
    #[arg(long, value_name = "SECS", conflicts_with = "insecure",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub handshake_timeout: Option<u64>,
}

impl SecureArgs {
    /// Makes `config` secure (unless `--insecure`) with the identity file's key and `allow`, and
    /// prints `identity: <key>`.
    pub fn apply(&self, config: &mut Config, allow: Allow) -> Result<()> {
        if self.insecure {
            println!("insecure: plaintext TCP, no identity");
            return Ok(());
        }
        let path = match &self.identity {
            Some(path) => path.clone(),
            None => default_path()?,
        };
        let identity = load_or_create(&path)?;
        println!("identity: {}", identity.public());
        make_secure(config, self.secure_config(identity, allow));
        Ok(())
    }

    /// The secure settings for `identity` with these options.
    pub fn secure_config(&self, identity: Identity, allow: Allow) -> SecureConfig {
        SecureConfig {
            allow,
            handshake_timeout: Duration::from_secs(self.handshake_timeout.unwrap_or(10)),
            ..SecureConfig::new(identity)
        }
    }
}

/// Turns `config` secure: sets `secure` and raises `segment_size` to what a whole transport
/// message needs.
pub fn make_secure(config: &mut Config, secure: SecureConfig) {
    config.segment_size = config.segment_size.max(MIN_SECURE_SEGMENT_SIZE);
    config.secure = Some(secure);
}

/// `Allow::Only(keys)`, or `Allow::Any` when no key is given.
pub fn allow_only(keys: &[PeerKey]) -> Allow {
    if keys.is_empty() {
        Allow::Any
    } else {
        Allow::Only(keys.iter().copied().collect())
    }
}

/// Parses a `--peer-key` / `--allow` value.
pub fn parse_key(hex: &str) -> std::result::Result<PeerKey, String> {
    hex.parse()
        .map_err(|e| format!("{e} (a peer key is the 64 hex characters after `identity:`)"))
}

/// A fresh in-memory identity from the OS RNG (for the demo's nodes).
pub fn generate() -> Result<Identity> {
    Identity::generate().map_err(|e| Failure::new(format!("cannot generate a key: {e}")))
}

/// `$XDG_CONFIG_HOME/openp2p/identity`, else `$HOME/.config/openp2p/identity`.
fn default_path() -> Result<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let config = absolute("XDG_CONFIG_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".config")))
        .ok_or_else(|| {
            Failure::new(
                "no identity file: neither XDG_CONFIG_HOME nor HOME is set; use --identity PATH",
            )
        })?;
    Ok(config.join("openp2p").join("identity"))
}

/// Reads the identity at `path`, or creates it there (parent directories too) if it is missing.
/// An existing file that others may read or write is refused, as ssh refuses such a key.
pub fn load_or_create(path: &Path) -> Result<Identity> {
    match read_secret(path) {
        Ok(secret) => {
            let secret = secret?;
            check_owner_only(path)?;
            return Ok(Identity::from_secret(secret));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(cannot(path, "read", e)),
    }
    let identity = generate()?;
    match create_secret(path, identity.secret()) {
        Ok(()) => Ok(identity),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match read_secret(path) {
            Ok(secret) => Ok(Identity::from_secret(secret?)),
            Err(e) => Err(cannot(path, "read", e)),
        },
        Err(e) => Err(cannot(path, "create", e)),
    }
}

/// Refuses a secret file whose mode lets group or others in (Unix only).
fn check_owner_only(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| cannot(path, "read", e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Failure::new(format!(
                "identity file {} is accessible by others (mode {:o}); its secret may be known: \
                 `chmod 600` it if you trust it, or move it away to create a new identity",
                path.display(),
                mode & 0o777
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn cannot(path: &Path, what: &str, e: io::Error) -> Failure {
    Failure::new(format!(
        "cannot {what} identity file {}: {e}",
        path.display()
    ))
}

/// The file's 32 bytes; the outer error is IO, the inner one a file of the wrong size.
fn read_secret(path: &Path) -> io::Result<Result<[u8; SECRET_LEN]>> {
    let mut bytes = Vec::with_capacity(SECRET_LEN + 1);
    // One byte more than a secret tells "too long" without reading a huge file.
    std::fs::File::open(path)?
        .take(SECRET_LEN as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes.as_slice().try_into().map_err(|_| {
        let size = if bytes.len() > SECRET_LEN {
            format!("more than {SECRET_LEN} bytes")
        } else {
            format!("{} bytes", bytes.len())
        };
        Failure::new(format!(
            "identity file {} holds {size}, not a {SECRET_LEN}-byte secret key (move it away to create a new identity)",
            path.display()
        ))
    }))
}

/// Writes a new file readable by its owner only; fails with `AlreadyExists` if there is one.
/// The secret is written to a private temporary file first and linked into place whole, so a
/// process starting at the same moment never reads a half-written file.
fn create_secret(path: &Path, secret: &[u8; SECRET_LEN]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    let written = file
        .write_all(secret)
        .and_then(|()| file.sync_all())
        // Fails with `AlreadyExists` when another process linked its file first.
        .and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_identity_is_created_owner_only_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/identity");
        let first = load_or_create(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), first.secret());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(load_or_create(&path).unwrap().public(), first.public());
    }

    #[test]
    fn an_identity_file_of_the_wrong_size_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity");
        for len in [0, 31, 33, 4096] {
            std::fs::write(&path, vec![1; len]).unwrap();
            let e = load_or_create(&path).unwrap_err().to_string();
            assert!(e.contains("not a 32-byte secret key"), "{e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn an_identity_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity");
        std::fs::write(&path, [5; SECRET_LEN]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("accessible by others (mode 644)"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_or_create(&path).unwrap().secret(), &[5; SECRET_LEN]);
    }

    #[test]
    fn creating_leaves_no_temporary_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity");
        load_or_create(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["identity"]);
    }
}
