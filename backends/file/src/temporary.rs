//! The temporary file of an atomic [`FileSink`](crate::FileSink): where its bytes are written
//! before they replace the target, and how nothing of it is left behind when the write fails
//! or the process is interrupted.
//!
//! Where the file system allows it (Linux `O_TMPFILE`: ext4, xfs, btrfs, tmpfs...), the file
//! is created without a name in the target's directory and linked into place on finish
//! (`linkat` of `/proc/self/fd/N`): a process that dies at any moment, even by `SIGKILL`, leaves
//! nothing. Elsewhere it is a named file beside the target (`.NAME.PID.N.tmp`), removed when
//! the sink is dropped unfinished, and, once [`remove_temporaries_on_signals`] was called, when
//! the process gets `SIGINT`, `SIGTERM` or `SIGHUP`. A named file exists only while it is in
//! the registry below, and it is created and renamed with the registry locked, so a signal
//! either finds it or comes before it exists.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rustix::fs::{AtFlags, CWD, Mode, OFlags};

/// The named temporary files that exist now.
static NAMED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn named() -> MutexGuard<'static, Vec<PathBuf>> {
    // A panic while the lock was held leaves a valid list.
    NAMED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where the bytes of an unfinished atomic file are.
#[derive(Debug)]
pub(crate) enum Temporary {
    /// An `O_TMPFILE` file: no name until linked, nothing to remove.
    Anonymous,
    /// A file of this name beside the target.
    Named(PathBuf),
}

/// Set (to anything) in the environment, atomic sinks use a named temporary file even where
/// `O_TMPFILE` works: for file systems that accept `O_TMPFILE` but cannot link it into place,
/// and to test the named path.
pub const NAMED_TEMPORARIES_VAR: &str = "TENSOR_IPC_NAMED_TEMPORARIES";

/// Creates the temporary file for `target` (whose directory is `dir` and file name `name`).
pub(crate) fn create(dir: &Path, name: &OsStr) -> io::Result<(File, Temporary)> {
    if std::env::var_os(NAMED_TEMPORARIES_VAR).is_none()
        && let Some(file) = create_anonymous(dir)?
    {
        return Ok((file, Temporary::Anonymous));
    }
    create_named(dir, name)
}

/// An `O_TMPFILE` file in `dir`, or `None` where that cannot be had (an old kernel, a file
/// system without it, no `/proc` to link it through), so a named one is used.
fn create_anonymous(dir: &Path) -> io::Result<Option<File>> {
    if !Path::new("/proc/self/fd").is_dir() {
        return Ok(None);
    }
    let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
    match rustix::fs::openat(CWD, dir, flags, Mode::from_raw_mode(0o666)) {
        Ok(fd) => Ok(Some(File::from(fd))),
        // What the kernel answers when it or the file system lacks O_TMPFILE.
        Err(e)
            if e == rustix::io::Errno::OPNOTSUPP
                || e == rustix::io::Errno::ISDIR
                || e == rustix::io::Errno::INVAL
                || e == rustix::io::Errno::NOSYS =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// A new file `.NAME.PID.N.tmp` in `dir`, registered while it exists.
fn create_named(dir: &Path, name: &OsStr) -> io::Result<(File, Temporary)> {
    let mut registry = named();
    for attempt in 0..100u32 {
        let path = named_path(dir, name, attempt);
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                registry.push(path.clone());
                return Ok((file, Temporary::Named(path)));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary file name beside the target",
    ))
}

fn named_path(dir: &Path, name: &OsStr, attempt: u32) -> PathBuf {
    let mut temp_name = OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.{attempt}.tmp", std::process::id()));
    dir.join(temp_name)
}

impl Temporary {
    /// Puts the finished `file` at `target` (whose directory is `dir` and file name `name`),
    /// replacing what is there.
    pub(crate) fn persist(
        self,
        file: &File,
        dir: &Path,
        name: &OsStr,
        target: &Path,
    ) -> io::Result<()> {
        match self {
            Temporary::Named(path) => {
                let mut registry = named();
                let renamed = std::fs::rename(&path, target);
                if renamed.is_err() {
                    let _ = std::fs::remove_file(&path);
                }
                registry.retain(|p| *p != path);
                renamed
            }
            Temporary::Anonymous => {
                let fd_path = format!("/proc/self/fd/{}", file.as_raw_fd());
                let link = |to: &Path| {
                    rustix::fs::linkat(CWD, fd_path.as_str(), CWD, to, AtFlags::SYMLINK_FOLLOW)
                };
                match link(target) {
                    Ok(()) => Ok(()),
                    // `linkat` never replaces: link under a temporary name, then rename that
                    // over the target, both with the registry locked.
                    Err(rustix::io::Errno::EXIST) => {
                        let mut registry = named();
                        let mut attempt = 0u32;
                        let path = loop {
                            let path = named_path(dir, name, attempt);
                            match link(&path) {
                                Ok(()) => break path,
                                Err(rustix::io::Errno::EXIST) if attempt < 100 => attempt += 1,
                                Err(e) => return Err(e.into()),
                            }
                        };
                        registry.push(path.clone());
                        let renamed = std::fs::rename(&path, target);
                        if renamed.is_err() {
                            let _ = std::fs::remove_file(&path);
                        }
                        registry.retain(|p| *p != path);
                        renamed
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Removes an unfinished file.
    pub(crate) fn discard(&self) {
        if let Temporary::Named(path) = self {
            let mut registry = named();
            let _ = std::fs::remove_file(path);
            registry.retain(|p| p != path);
        }
    }
}

/// Removes every named temporary file of this process's unfinished atomic
/// [`FileSink`](crate::FileSink)s when the process gets `SIGINT`, `SIGTERM` or `SIGHUP`,
/// then lets the signal end the process as it would have (its default action).
///
/// For programs (the `tensor-ipc` command calls it first thing), not libraries: it takes
/// those three signals over for the whole process, on a thread of its own. Calling it again
/// does nothing. Files made with `O_TMPFILE` (most Linux file systems) never need it: they
/// have no name until finished.
pub fn remove_temporaries_on_signals() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), io::ErrorKind>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals =
            signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(|e| e.kind())?;
        std::thread::Builder::new()
            .name("tensor-ipc-file-signals".to_owned())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    // The lock is kept until the process ends, so no new file appears.
                    let registry = named();
                    for path in registry.iter() {
                        let _ = std::fs::remove_file(path);
                    }
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                    drop(registry);
                }
            })
            .map(drop)
            .map_err(|e| e.kind())
    });
    match installed {
        Ok(()) => Ok(()),
        Err(kind) => Err(io::Error::new(*kind, "cannot watch for signals")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_files_are_registered_while_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let (file, temp) = create_named(dir.path(), OsStr::new("out.bin")).unwrap();
        let Temporary::Named(path) = &temp else {
            unreachable!()
        };
        let path = path.clone();
        assert!(path.exists());
        assert!(named().contains(&path));
        temp.discard();
        assert!(!path.exists() && !named().contains(&path));
        drop(file);

        let (file, temp) = create_named(dir.path(), OsStr::new("out.bin")).unwrap();
        std::fs::write(&target, b"old").unwrap();
        temp.persist(&file, dir.path(), OsStr::new("out.bin"), &target)
            .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(named().iter().all(|p| !p.starts_with(dir.path())));
    }

    #[test]
    fn anonymous_files_are_linked_over_an_existing_target() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let Some(mut file) = create_anonymous(dir.path()).unwrap() else {
            eprintln!("no O_TMPFILE here: skipped");
            return;
        };
        file.write_all(b"new").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        Temporary::Anonymous
            .persist(&file, dir.path(), OsStr::new("out.bin"), &target)
            .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        // Again, over the file now there.
        let mut file = create_anonymous(dir.path()).unwrap().unwrap();
        file.write_all(b"newer").unwrap();
        Temporary::Anonymous
            .persist(&file, dir.path(), OsStr::new("out.bin"), &target)
            .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"newer");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
