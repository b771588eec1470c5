//! Reading local input (layout files and blobs, launcher binaries, CA bundles) as hostile:
//! the file type is checked on the open descriptor before any byte is read, the open never
//! blocks (a FIFO or device in place of a file is refused, not waited on), and no more than
//! a stated bound is ever read.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Opens `path` (symlinks followed) for reading if it is a regular file; `what` names it
/// in errors. An absent file is `Error::Io` with kind `NotFound`.
pub fn open_regular(path: &Path, what: &str) -> Result<(File, Metadata)> {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(format!("opening {what}"), e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("opening {what}"), e))?;
    let kind = meta.file_type();
    let other = if kind.is_file() {
        return Ok((file, meta));
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(Error::invalid(what, format!("{other}, not a regular file")))
}

/// The whole of the regular file `path`, refused without reading when larger than `limit`.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let (file, meta) = open_regular(path, what)?;
    read_open_bounded(file, meta.len(), limit, what)
}

/// The rest of `file` (of `len` bytes by its metadata), at most `limit` bytes: a file that
/// is, or grows, larger is refused.
pub fn read_open_bounded(file: File, len: u64, limit: u64, what: &str) -> Result<Vec<u8>> {
    let too_large = |size| Error::TooLarge {
        path: what.to_string(),
        size,
        limit,
    };
    if len > limit {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading {what}"), e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = read_bounded(&fifo, 10, "the thing")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a FIFO, not a regular file"), "{err}");
        let err = read_bounded(Path::new("/dev/zero"), 10, "x").unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let err = read_bounded(dir.path(), 10, "x").unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
    }

    #[test]
    fn larger_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        File::create(&big).unwrap().set_len(2 << 30).unwrap(); // sparse
        let err = read_bounded(&big, 1 << 20, "big file").unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { size, .. } if size == 2 << 30),
            "{err}"
        );
        std::fs::write(&big, b"12345").unwrap();
        assert_eq!(read_bounded(&big, 5, "x").unwrap(), b"12345");
        assert!(read_bounded(&big, 4, "x").is_err());
    }
}
