//! Data on disk before the catalog says it is there.
//!
//! Written bytes sit in the page cache until the kernel writes them back; a power cut loses them. If the catalog
//! (SQLite, which syncs its own commits) recorded a publication or a finished download before its files were on disk,
//! the node would come back seeding files full of zeros under a record that promises the publisher's bytes. So the
//! files are synced first, then the directories that name them, then the catalog is written.

use std::fs::File;
use std::io;
use std::path::Path;

/// Syncs `path` (a file, or a directory with everything below it) and then the directory that contains it.
/// Symbolic links are not followed.
pub(crate) fn sync_tree_and_parent(path: &Path) -> io::Result<()> {
    sync_tree(path)?;
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Syncs a file, or a directory's files and subdirectories and then the directory itself.
fn sync_tree(path: &Path) -> io::Result<()> {
    let kind = std::fs::symlink_metadata(path)?.file_type();
    if kind.is_dir() {
        for entry in std::fs::read_dir(path)? {
            sync_tree(&entry?.path())?;
        }
        sync_dir(path)
    } else if kind.is_file() {
        File::open(path)?.sync_all()
    } else {
        Ok(())
    }
}

/// Syncs a directory's entries (the names of the files in it).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_a_tree_and_refuses_a_missing_path() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().join("publication");
        std::fs::create_dir_all(root.join("photos/2026"))?;
        std::fs::write(root.join("video.mp4"), b"frames")?;
        std::fs::write(root.join("photos/2026/a.jpg"), b"pixels")?;
        std::os::unix::fs::symlink("/nonexistent", root.join("link"))?;
        sync_tree_and_parent(&root)?;
        sync_tree_and_parent(&root.join("video.mp4"))?;
        let missing = sync_tree_and_parent(&tmp.path().join("gone"));
        assert_eq!(missing.map_err(|e| e.kind()), Err(io::ErrorKind::NotFound));
        Ok(())
    }
}
