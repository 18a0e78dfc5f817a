//! Temporary files and folders that an interrupted process may leave behind, and how a later
//! one tells that they are left over.
//!
//! No signal handler cleans up after Ctrl-C or `kill -9`: whatever a process was writing
//! stays. So every such file is made in one scratch folder (`tmp/` in a runtime directory,
//! [`dir`]) and named for the process that owns it, `<kind>-<pid>-<random><suffix>`; a
//! collection removes it once that process is gone ([`owner_gone`]), whatever its age, and
//! leaves a live process's alone, whatever its age.
//!
//! A process is "gone" when `/proc/<pid>` is. So processes that share a base directory must
//! share a PID namespace too: one in another container is not seen, and a collection there
//! would remove the file it is downloading into (the install then fails; nothing else is
//! lost). A PID reused by a later process keeps a file until that process ends.

use std::path::{Path, PathBuf};

/// The scratch folder of the runtime directory `runtime_dir`.
pub(crate) fn dir(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("tmp")
}

/// The process that owns the scratch file or folder `name` (`<kind>-<pid>-…`), if the name
/// says.
pub(crate) fn owner(name: &str) -> Option<u32> {
    name.split('-').nth(1)?.parse().ok()
}

/// Whether process `pid` has ended, as far as this process can tell: on Linux, `/proc/<pid>`
/// is gone while `/proc/self` is there. Without `/proc`, no process is known to be gone (and
/// only age lets a collection remove what one left).
pub(crate) fn process_gone(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    cfg!(target_os = "linux")
        && Path::new("/proc/self").exists()
        && !Path::new("/proc").join(pid.to_string()).exists()
}

/// Whether the owner `name` names (see [`owner`]) is gone.
pub(crate) fn owner_gone(name: &str) -> bool {
    owner(name).is_some_and(process_gone)
}

#[cfg(feature = "package")]
pub(crate) use file::folder;
#[cfg(feature = "package")]
pub use file::ScratchFile;

#[cfg(feature = "package")]
mod file {
    use std::path::Path;

    use crate::error::Error;

    /// A temporary file in a runtime directory's scratch folder, named for this process, so
    /// that if this process is interrupted before it is done, `gp gc` and the next manager
    /// over the same directory remove it (`gp install`, `gp pull` and the management API
    /// download and upload packages into one). Dropped, it is removed.
    #[derive(Debug)]
    pub struct ScratchFile(tempfile::NamedTempFile);

    impl ScratchFile {
        /// A new, empty file `<kind>-<pid>-<random><suffix>` in `runtime_dir`'s scratch
        /// folder (made if missing), readable by its owner only until it is
        /// [persisted](Self::persist).
        pub fn create(runtime_dir: &Path, kind: &str, suffix: &str) -> Result<ScratchFile, Error> {
            let dir = super::dir(runtime_dir);
            let prefix = format!("{kind}-{}-", std::process::id());
            let create = || {
                tempfile::Builder::new()
                    .prefix(&prefix)
                    .suffix(suffix)
                    .tempfile_in(&dir)
            };
            let made = std::fs::create_dir_all(&dir).and_then(|()| create());
            // Another process may have removed the folder, empty, in between (`gp pull`
            // tidies up after itself): once more.
            let made = match made {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(&dir).and_then(|()| create())
                }
                other => other,
            };
            made.map(ScratchFile).map_err(|e| Error::io(&dir, e))
        }

        /// Removes `runtime_dir`'s scratch folder, then `runtime_dir`, each only if it is
        /// empty: a command that made them for one file it no longer has (a refused
        /// `gp install`, any `gp pull`) leaves the folder it was given as it found it. Another
        /// process's file keeps them; a [`create`](Self::create) racing this makes them again.
        pub fn tidy(runtime_dir: &Path) {
            let _ = std::fs::remove_dir(super::dir(runtime_dir));
            let _ = std::fs::remove_dir(runtime_dir);
        }

        /// The file, to write.
        pub fn file(&self) -> &std::fs::File {
            self.0.as_file()
        }

        /// Where it is.
        pub fn path(&self) -> &Path {
            self.0.path()
        }

        /// Moves it to `target` (replacing what is there) as an ordinary file (mode 0644):
        /// one rename, or, when the scratch folder is on another file system than `target`,
        /// a copy beside `target` renamed over it.
        pub fn persist(self, target: &Path) -> Result<(), Error> {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = self
                    .file()
                    .set_permissions(std::fs::Permissions::from_mode(0o644));
            }
            match self.0.persist(target) {
                Ok(_) => Ok(()),
                Err(e) if e.error.kind() == std::io::ErrorKind::CrossesDevices => {
                    let from = e.file;
                    crate::util::write_atomically(target, |tmp| {
                        std::fs::copy(from.path(), tmp).map(drop)
                    })
                }
                Err(e) => Err(Error::io(target, e.error)),
            }
        }
    }

    /// A temporary folder `<kind>-<pid>-<random>` in `runtime_dir`'s scratch folder (made if
    /// missing), removed when dropped.
    pub(crate) fn folder(runtime_dir: &Path, kind: &str) -> Result<tempfile::TempDir, Error> {
        let dir = super::dir(runtime_dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        tempfile::Builder::new()
            .prefix(&format!("{kind}-{}-", std::process::id()))
            .tempdir_in(&dir)
            .map_err(|e| Error::io(&dir, e))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_scratch_name_names_its_owner() {
        assert_eq!(super::owner("download-4242-a1B2c3.plg"), Some(4242));
        assert_eq!(super::owner("verify-17-xyz"), Some(17));
        assert_eq!(super::owner("something.plg"), None);
        assert_eq!(super::owner("a-b-c"), None);
        assert!(!super::owner_gone(&format!(
            "pull-{}-x.plg",
            std::process::id()
        )));
    }

    #[test]
    fn a_process_that_ended_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(super::process_gone(pid) || !cfg!(target_os = "linux"));
        assert!(!super::process_gone(std::process::id()));
    }
}
