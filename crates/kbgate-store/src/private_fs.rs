//! Files and directories only their owner may read: everything kbgate creates on disk (the
//! SQLite databases, attachment files, the mail outbox with live sign-in links, the data
//! directory) holds customer content or credentials.
//!
//! Directories are created 0700 and files 0600 whatever the process umask is: the mode asked
//! of `open`/`mkdir` is narrowed by the umask but never widened, so it is set again explicitly
//! on what was just created. What already existed is left as the operator made it. On other
//! platforms than Unix these are the plain std calls.

use std::io;
use std::path::Path;

/// Creates `dir` and any missing parents, each new one 0700.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        // The ancestors that do not exist yet, outermost first.
        let missing: Vec<&Path> = dir
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
            .collect();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        for p in missing.iter().rev() {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Creates `path` as an empty 0600 file unless it exists (an existing file is left alone).
pub fn create_file_if_missing(path: &Path) -> io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(file) => restrict(&file),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates (or truncates) `path` for writing, 0600.
pub async fn create_file(path: &Path) -> io::Result<tokio::fs::File> {
    let mut opts = tokio::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let file = opts.open(path).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .await?;
    }
    Ok(file)
}

/// Sets an open file to 0600 (on Unix).
fn restrict(file: &std::fs::File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn what_is_created_is_private_and_what_existed_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let deep = tmp.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        for p in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&tmp.path().join(p)), 0o700, "{p}");
        }
        assert_eq!(
            mode(tmp.path()),
            0o755,
            "an existing directory keeps its mode"
        );
        create_dir_all(&deep).unwrap();

        let db = deep.join("kb.db");
        create_file_if_missing(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
        create_file_if_missing(&db).unwrap();
        assert_eq!(mode(&db), 0o640, "an existing file keeps its mode");

        let mail = deep.join("m.eml");
        drop(create_file(&mail).await.unwrap());
        assert_eq!(mode(&mail), 0o600);
    }
}
