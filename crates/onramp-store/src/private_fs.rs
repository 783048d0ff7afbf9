//! Files that hold secrets (the SQLite databases, their WAL, mail with generated passwords, the
//! secret key) are created readable by onramp's user alone: files 0600 in directories 0700.
//! SQLite gives its `-wal` and `-shm` files the mode of the database file, so creating that one
//! 0600 first covers them.

use std::io::Write;
use std::path::Path;

/// `path` and its missing parents, each created 0700 (existing ones are left as they are).
pub fn create_dir_all(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Create `path` 0600 if it does not exist yet (an existing file is left untouched).
pub fn touch(path: &Path) -> std::io::Result<()> {
    match options().open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Write `bytes` to `path` (replacing it) through a 0600 temporary file and a rename, so a
/// reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    options().open(&tmp)?.write_all(bytes)?;
    std::fs::rename(&tmp, path)
}

/// Create `path` 0600 with `bytes`; fails if it exists.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    options().open(path)?.write_all(bytes)
}

fn options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_and_directories_are_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_dir_all(&dir).unwrap();
        assert_eq!((mode(&root.path().join("a")), mode(&dir)), (0o700, 0o700));
        touch(&dir.join("db")).unwrap();
        write_atomic(&dir.join("m.eml"), b"x").unwrap();
        write_atomic(&dir.join("m.eml"), b"y").unwrap();
        assert_eq!((mode(&dir.join("db")), mode(&dir.join("m.eml"))), (0o600, 0o600));
        assert_eq!(std::fs::read(dir.join("m.eml")).unwrap(), b"y");
        write_new(&dir.join("key"), b"k").unwrap();
        assert_eq!(mode(&dir.join("key")), 0o600);
        assert!(write_new(&dir.join("key"), b"k").is_err(), "never overwrites");
    }
}
