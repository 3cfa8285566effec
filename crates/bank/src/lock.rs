//! One writer per bank, nothing outside the bank, and no leftovers from interrupted writes.
//!
//! * **Locking.** A writer holds an advisory `flock` on `<bank>/.lock` for as long as it lives:
//!   exclusive for a whole-bank writer and for [`crate::merge_shards`], shared for a shard
//!   writer, which also holds an exclusive lock on `shards/<i>-of-<n>.lock`. So shards run side
//!   by side, but never beside a whole-bank writer or a merge, and no shard twice. The kernel
//!   drops the locks when the process ends, even on `kill -9`: a lock is never stale. The
//!   exclusive holder writes its PID into the lock file for the "in use by PID …" message.
//! * **Containment.** Every path the bank reads or writes must resolve (symlinks followed)
//!   inside the canonical bank folder; a symlinked `parts/` or part file leading out is refused.
//! * **Cleanup.** Atomic writes go through `.<name>.tmp<pid>`; those of dead processes are
//!   removed when a writer opens the bank.
use crate::error::{Error, Result};
use crate::layout::SHARDS_DIR;
use crate::shard::Shard;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside a bank folder.
pub const LOCK_FILE: &str = ".lock";

/// The advisory locks a writer holds on a bank; released when dropped (or the process ends).
#[derive(Debug)]
pub struct BankLock {
    _bank: File,
    _shard: Option<File>,
}

impl BankLock {
    /// Takes the bank's lock at `dir` (an existing folder): exclusive without a shard; shared
    /// on the bank plus exclusive on the shard's own lock file with one.
    ///
    /// # Errors
    /// [`Error::InUse`] naming the holder's PID if another writer holds it;
    /// [`Error::OutsideBank`] if the lock file or `shards/` leads out of the bank; I/O errors.
    pub fn acquire(dir: &Path, shard: Option<Shard>) -> Result<BankLock> {
        let root = canonical_root(dir)?;
        let bank_path = dir.join(LOCK_FILE);
        let bank = open_lock_file(&root, &bank_path)?;
        let Some(shard) = shard else {
            try_lock(dir, &bank, &bank_path, false, || holders(dir))?;
            write_pid(&bank, &bank_path)?;
            return Ok(BankLock {
                _bank: bank,
                _shard: None,
            });
        };
        try_lock(dir, &bank, &bank_path, true, || holders(dir))?;
        let shards = dir.join(SHARDS_DIR);
        ensure_inside(&root, &shards)?;
        std::fs::create_dir_all(&shards).map_err(|e| Error::io(&shards, e))?;
        let shard_path = shards.join(shard_lock_name(shard));
        let file = open_lock_file(&root, &shard_path)?;
        try_lock(dir, &file, &shard_path, false, || {
            read_pid(&shard_path).map_or_else(
                || format!("another process (shard {shard})"),
                |p| format!("PID {p} (shard {shard})"),
            )
        })
        .map_err(|e| match e {
            Error::InUse { dir, holder } => Error::InUse {
                dir,
                holder: format!("{holder}, the same shard"),
            },
            other => other,
        })?;
        write_pid(&file, &shard_path)?;
        Ok(BankLock {
            _bank: bank,
            _shard: Some(file),
        })
    }
}

fn shard_lock_name(shard: Shard) -> String {
    format!("{}-of-{}.lock", shard.index, shard.count)
}

fn open_lock_file(root: &Path, path: &Path) -> Result<File> {
    ensure_inside(root, path)?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

fn try_lock(
    dir: &Path,
    file: &File,
    path: &Path,
    shared: bool,
    holder: impl FnOnce() -> String,
) -> Result<()> {
    let result = if shared {
        file.try_lock_shared()
    } else {
        file.try_lock()
    };
    match result {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(Error::InUse {
            dir: dir.to_path_buf(),
            holder: holder(),
        }),
        Err(TryLockError::Error(e)) => Err(Error::io(path, e)),
    }
}

fn write_pid(file: &File, path: &Path) -> Result<()> {
    let io = |e| Error::io(path, e);
    file.set_len(0).map_err(io)?;
    let mut f = file;
    f.write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(io)
}

fn read_pid(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Who holds the bank: the PID in `.lock` and those of live shard writers.
fn holders(dir: &Path) -> String {
    let mut found = Vec::new();
    if let Some(p) = read_pid(&dir.join(LOCK_FILE)).filter(|&p| pid_alive(p)) {
        found.push(format!("PID {p}"));
    }
    if let Ok(entries) = std::fs::read_dir(dir.join(SHARDS_DIR)) {
        let mut shards: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let stem = name.strip_suffix(".lock")?;
                let shard = Shard::from_file_name(&format!("{stem}.jsonl"))?;
                let pid = read_pid(&e.path()).filter(|&p| pid_alive(p))?;
                Some(format!("PID {pid} (shard {shard})"))
            })
            .collect();
        shards.sort();
        found.extend(shards);
    }
    if found.is_empty() {
        "another process".to_string()
    } else {
        found.join(", ")
    }
}

/// Whether a process with this id exists (Linux: `/proc/<pid>`; elsewhere assumed alive).
fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// The bank folder with every symlink resolved.
pub(crate) fn canonical_root(dir: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))
}

/// Checks that `path` (or, if it does not exist yet, its nearest existing ancestor) resolves
/// inside `root`, the canonical bank folder.
///
/// # Errors
/// [`Error::OutsideBank`] naming the path and where it leads (a dangling symlink too).
pub(crate) fn ensure_inside(root: &Path, path: &Path) -> Result<()> {
    let mut p = path;
    let meta = loop {
        match std::fs::symlink_metadata(p) {
            Ok(m) => break m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match p.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => p = parent,
                _ => return Ok(()),
            },
            Err(e) => return Err(Error::io(p, e)),
        }
    };
    let outside = |target: PathBuf| Error::OutsideBank {
        path: p.to_path_buf(),
        target,
        bank: root.to_path_buf(),
    };
    match std::fs::canonicalize(p) {
        Ok(real) if real.starts_with(root) => Ok(()),
        Ok(real) => Err(outside(real)),
        Err(_) if meta.file_type().is_symlink() => {
            Err(outside(std::fs::read_link(p).unwrap_or_default()))
        }
        Err(e) => Err(Error::io(p, e)),
    }
}

/// Checks many part files quickly: each folder is resolved once, each file is only resolved
/// if it is itself a symlink.
#[derive(Debug)]
pub(crate) struct Containment {
    root: PathBuf,
    good_dirs: std::collections::HashSet<PathBuf>,
}

impl Containment {
    pub fn new(root: PathBuf) -> Containment {
        Containment {
            root,
            good_dirs: Default::default(),
        }
    }

    /// [`ensure_inside`] for `path`, caching its folder.
    pub fn check(&mut self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent() {
            if !self.good_dirs.contains(parent) {
                ensure_inside(&self.root, parent)?;
                if parent.is_dir() {
                    self.good_dirs.insert(parent.to_path_buf());
                }
            }
        }
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => ensure_inside(&self.root, path),
            _ => Ok(()),
        }
    }
}

/// The PID in a temporary name `.<name>.tmp<pid>` of an atomic write, if `name` is one.
fn tmp_pid(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, digits) = name.rsplit_once(".tmp")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Removes the temporary files `.<name>.tmp<pid>` that processes no longer alive left in the
/// bank (the bank folder, `shards/` and `parts/`, not following symlinks); returns how many.
///
/// # Errors
/// I/O errors naming the folder or file.
pub(crate) fn remove_stale_tmp_files(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&folder, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&folder, e))?;
            let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() {
                if folder != dir || name == SHARDS_DIR || name == crate::layout::PARTS_DIR {
                    stack.push(entry.path());
                }
            } else if kind.is_file() && tmp_pid(&name).is_some_and(|p| !pid_alive(p)) {
                let path = entry.path();
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&path, e)),
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_names_are_recognised() {
        assert_eq!(tmp_pid(".a.png.tmp123"), Some(123));
        assert_eq!(tmp_pid(".manifest.jsonl.tmp9"), Some(9));
        assert_eq!(tmp_pid("a.png.tmp123"), None);
        assert_eq!(tmp_pid(".a.png.tmp"), None);
        assert_eq!(tmp_pid(".a.tmp12x"), None);
        assert_eq!(tmp_pid(".lock"), None);
    }

    #[test]
    fn a_second_whole_bank_lock_is_refused_and_released_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let first = BankLock::acquire(d.path(), None).unwrap();
        let e = BankLock::acquire(d.path(), None).unwrap_err().to_string();
        let pid = format!("in use by PID {}", std::process::id());
        assert!(e.contains(&pid), "{e}");
        let e = BankLock::acquire(d.path(), Some(Shard::new(0, 2).unwrap())).unwrap_err();
        assert!(e.to_string().contains(&pid), "{e}");
        drop(first);
        BankLock::acquire(d.path(), None).unwrap();
    }

    #[test]
    fn shards_lock_side_by_side_but_not_twice_nor_beside_a_whole_bank_writer() {
        let d = tempfile::tempdir().unwrap();
        let s0 = BankLock::acquire(d.path(), Some(Shard::new(0, 2).unwrap())).unwrap();
        let _s1 = BankLock::acquire(d.path(), Some(Shard::new(1, 2).unwrap())).unwrap();
        let e = BankLock::acquire(d.path(), Some(Shard::new(0, 2).unwrap()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("(shard 0/2), the same shard"), "{e}");
        let e = BankLock::acquire(d.path(), None).unwrap_err().to_string();
        assert!(
            e.contains("(shard 0/2)") && e.contains("(shard 1/2)"),
            "{e}"
        );
        drop(s0);
        BankLock::acquire(d.path(), Some(Shard::new(0, 2).unwrap())).unwrap();
    }

    #[test]
    fn stale_tmp_files_of_dead_processes_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let parts = d.path().join("parts/cdp/0000");
        std::fs::create_dir_all(&parts).unwrap();
        let other = d.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        // PIDs above the kernel's pid_max (4194304) never exist.
        let dead = parts.join(".a.png.tmp999999999");
        let mine = parts.join(format!(".b.png.tmp{}", std::process::id()));
        let manifest_tmp = d.path().join(".manifest.jsonl.tmp999999998");
        let elsewhere = other.join(".c.png.tmp999999999");
        for p in [&dead, &mine, &manifest_tmp, &elsewhere] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(remove_stale_tmp_files(d.path()).unwrap(), 2);
        assert!(!dead.exists() && !manifest_tmp.exists());
        assert!(mine.exists(), "a live writer's temporary file is kept");
        assert!(
            elsewhere.exists(),
            "only the bank's own folders are cleaned"
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_leading_out_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let bank = d.path().join("bank");
        std::fs::create_dir_all(bank.join("inner")).unwrap();
        std::os::unix::fs::symlink(out.path(), bank.join("parts")).unwrap();
        std::os::unix::fs::symlink(bank.join("inner"), bank.join("ok")).unwrap();
        let root = canonical_root(&bank).unwrap();
        ensure_inside(&root, &bank.join("ok/x/y.png")).unwrap();
        ensure_inside(&root, &bank.join("nothing/here.png")).unwrap();
        let e = ensure_inside(&root, &bank.join("parts/cdp/0000/a.png"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("parts") && e.contains("outside the bank"), "{e}");
        std::os::unix::fs::symlink("/nonexistent/target", bank.join("dangling")).unwrap();
        let e = ensure_inside(&root, &bank.join("dangling")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/target"), "{e}");
    }
}
