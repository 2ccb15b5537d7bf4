//! JSON-lines stores: [`DeadLetterDir`] (a directory of files rotated by size) and
//! [`JsonlDeadLetters`] (one file, the v0.1 layout). The directory protocol is on
//! [`DeadLetterDir`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::record::parse_lines;
use super::{DeadLetterError, DeadLetterSink, DeadLetterStore, Listing, Record, RecordKey, Stored};

/// The default size at which a dead-letter file is sealed and the next one started: 64 MiB.
pub const DEFAULT_ROTATE_BYTES: NonZeroU64 = match NonZeroU64::new(64 * 1024 * 1024) {
    Some(bytes) => bytes,
    None => NonZeroU64::MIN,
};

const PREFIX: &str = "dead-letters-";
const OPEN_SUFFIX: &str = ".jsonl";
const SEALED_SUFFIX: &str = ".sealed.jsonl";
const TMP_SUFFIX: &str = ".tmp";
const MARKS: &str = "replayed.jsonl";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is a few field updates around blocking I/O; a panic cannot leave
    // them half-done in a way that matters, so a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, DeadLetterError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|join| io::Error::other(join.to_string()))?
        .map_err(DeadLetterError::Io)
}

/// One file of a store: its sequence number (0 for a single-file store) and whether it is
/// sealed.
#[derive(Debug, Clone)]
struct Segment {
    seq: u64,
    path: PathBuf,
    sealed: bool,
}

/// A directory or a single file.
#[derive(Debug, Clone)]
enum Layout {
    Dir(PathBuf),
    File(PathBuf),
}

impl Layout {
    fn segments(&self) -> io::Result<Vec<Segment>> {
        match self {
            Layout::File(path) => Ok(vec![Segment {
                seq: 0,
                path: path.clone(),
                sealed: false,
            }]),
            Layout::Dir(dir) => {
                let mut found: BTreeMap<u64, Segment> = BTreeMap::new();
                for entry in fs::read_dir(dir)? {
                    let entry = entry?;
                    let name = entry.file_name();
                    let Some(name) = name.to_str() else { continue };
                    if let Some((seq, sealed)) = parse_name(name) {
                        let segment = Segment {
                            seq,
                            path: entry.path(),
                            sealed,
                        };
                        // A file seen under both names was sealed between two directory reads.
                        found
                            .entry(seq)
                            .and_modify(|s| {
                                if sealed {
                                    *s = segment.clone();
                                }
                            })
                            .or_insert(segment);
                    }
                }
                Ok(found.into_values().collect())
            }
        }
    }

    fn marks(&self) -> PathBuf {
        match self {
            Layout::Dir(dir) => dir.join(MARKS),
            Layout::File(path) => {
                let mut name = path.as_os_str().to_owned();
                name.push(".replayed.jsonl");
                PathBuf::from(name)
            }
        }
    }

    fn key(&self, seq: u64, line: usize) -> RecordKey {
        match self {
            Layout::Dir(_) => RecordKey::new(format!("{seq}:{line}")),
            Layout::File(_) => RecordKey::new(line.to_string()),
        }
    }

    fn parse_key(&self, key: &str) -> Option<(u64, usize)> {
        match self {
            Layout::Dir(_) => {
                let (seq, line) = key.split_once(':')?;
                Some((seq.parse().ok()?, line.parse().ok()?))
            }
            Layout::File(_) => Some((0, key.parse().ok()?)),
        }
    }

    fn describe(&self) -> String {
        match self {
            Layout::Dir(dir) | Layout::File(dir) => dir.display().to_string(),
        }
    }
}

/// `dead-letters-<seq>.jsonl` → (seq, false); `dead-letters-<seq>.sealed.jsonl` → (seq, true).
fn parse_name(name: &str) -> Option<(u64, bool)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (digits, sealed) = match rest.strip_suffix(SEALED_SUFFIX) {
        Some(digits) => (digits, true),
        None => (rest.strip_suffix(OPEN_SUFFIX)?, false),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, sealed))
}

fn open_name(seq: u64) -> String {
    format!("{PREFIX}{seq:06}{OPEN_SUFFIX}")
}

fn sealed_name(seq: u64) -> String {
    format!("{PREFIX}{seq:06}{SEALED_SUFFIX}")
}

/// Reads a segment, trying its sealed name when the open one was sealed meanwhile. `None`
/// when it is gone (deleted by hand).
fn read_segment(layout: &Layout, segment: &Segment, from: u64) -> io::Result<Option<Vec<u8>>> {
    let mut candidates = vec![segment.path.clone()];
    if let (Layout::Dir(dir), false) = (layout, segment.sealed) {
        candidates.push(dir.join(sealed_name(segment.seq)));
    }
    for path in candidates {
        match File::open(&path) {
            Ok(mut file) => {
                file.seek(SeekFrom::Start(from))?;
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)?;
                return Ok(Some(bytes));
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(None)
}

/// One line of the marks file.
#[derive(Serialize, Deserialize)]
struct Mark {
    v: u64,
    key: RecordKey,
    at: Timestamp,
}

/// Per-file line counts, read incrementally, for [`DeadLetterStore::pending_count`].
#[derive(Debug, Default)]
struct Counts {
    files: HashMap<u64, FileCount>,
    marks_bytes: u64,
    marks: HashSet<(u64, usize)>,
}

#[derive(Debug, Default, Clone, Copy)]
struct FileCount {
    bytes: u64,
    last_line: usize,
    records: u64,
    sealed: bool,
}

/// The reading and marking half, shared by both stores.
#[derive(Debug)]
struct Reader {
    layout: Layout,
    sync: bool,
    counts: Mutex<Counts>,
}

impl Reader {
    fn new(layout: Layout) -> Self {
        Self {
            layout,
            sync: false,
            counts: Mutex::new(Counts::default()),
        }
    }

    fn read_marks(&self) -> io::Result<HashSet<RecordKey>> {
        let bytes = match fs::read(self.layout.marks()) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
            Err(error) => return Err(error),
        };
        Ok(marks_of(&bytes).0)
    }

    fn pending(&self) -> io::Result<Listing> {
        let marks = self.read_marks()?;
        let mut listing = Listing::default();
        for segment in self.layout.segments()? {
            let Some(bytes) = read_segment(&self.layout, &segment, 0)? else {
                continue;
            };
            let parsed = parse_lines(&bytes, &segment.path.display().to_string(), segment.sealed);
            for (line, record) in parsed.records {
                let key = self.layout.key(segment.seq, line);
                if !marks.contains(&key) {
                    listing.records.push(Stored::new(key, record));
                }
            }
            listing.errors.extend(parsed.errors);
        }
        Ok(listing)
    }

    fn mark(&self, keys: &[RecordKey]) -> io::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let at = Timestamp::now();
        let mut text = Vec::new();
        for key in keys {
            let mark = Mark {
                v: 1,
                key: key.clone(),
                at,
            };
            serde_json::to_writer(&mut text, &mark).map_err(io::Error::other)?;
            text.push(b'\n');
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.layout.marks())?;
        file.write_all(&text)?;
        if self.sync {
            file.sync_data()?;
        }
        Ok(())
    }

    fn count(&self) -> io::Result<u64> {
        let segments = self.layout.segments()?;
        let mut counts = lock(&self.counts);
        let present: HashSet<u64> = segments.iter().map(|s| s.seq).collect();
        counts.files.retain(|seq, _| present.contains(seq));
        for segment in &segments {
            let known = counts.files.get(&segment.seq).copied().unwrap_or_default();
            if known.sealed {
                continue;
            }
            let Some(bytes) = read_segment(&self.layout, segment, known.bytes)? else {
                continue;
            };
            let parsed = parse_lines(&bytes, "", false);
            let mut next = known;
            next.bytes += parsed.complete_bytes as u64;
            next.records += parsed.lines as u64;
            next.last_line += bytes[..parsed.complete_bytes]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            next.sealed = segment.sealed;
            counts.files.insert(segment.seq, next);
        }
        let marks_bytes = counts.marks_bytes;
        match File::open(self.layout.marks()) {
            Ok(mut file) => {
                file.seek(SeekFrom::Start(marks_bytes))?;
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)?;
                let (keys, complete) = marks_of(&bytes);
                counts.marks_bytes += complete as u64;
                for key in keys {
                    if let Some(position) = self.layout.parse_key(key.as_str()) {
                        counts.marks.insert(position);
                    }
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let total: u64 = counts.files.values().map(|f| f.records).sum();
        let marked = counts
            .marks
            .iter()
            .filter(|(seq, line)| counts.files.get(seq).is_some_and(|f| *line <= f.last_line))
            .count() as u64;
        Ok(total.saturating_sub(marked))
    }
}

/// The keys of a marks file's complete lines (a torn last line is left for later), and the
/// bytes those lines take.
fn marks_of(bytes: &[u8]) -> (HashSet<RecordKey>, usize) {
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |end| end + 1);
    let keys = bytes[..complete]
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Mark>(line).ok())
        .map(|mark| mark.key)
        .collect();
    (keys, complete)
}

/// The file a [`DeadLetterDir`] writer appends to, locked while it is open.
#[derive(Debug)]
struct OpenFile {
    seq: u64,
    file: File,
    len: u64,
}

/// A dead-letter store in a directory of JSON-lines files, rotated by size, safe to read while
/// it is written and to write from several processes.
///
/// # The protocol
///
/// ```text
/// <dir>/dead-letters-000001.sealed.jsonl   full: never written again
/// <dir>/dead-letters-000002.sealed.jsonl
/// <dir>/dead-letters-000003.jsonl          open: one writer appends whole lines to it
/// <dir>/replayed.jsonl                     keys of records a re-submission delivered
/// ```
///
/// - A writer creates its own file (the next sequence number) on its first record, holding an
///   advisory lock on it ([`File::try_lock`]) for as long as it writes there, so several
///   processes (a server, a replay next to it) can write to one directory without sharing a
///   file. A line is written with one `write_all` to a file opened for appending.
/// - When the next line would take the file past the rotation size, the writer renames it to
///   `….sealed.jsonl` and starts the next one. A sealed file never changes again.
/// - Opening the directory seals the files of writers that are gone (an unlocked open file),
///   first terminating a torn last line so it cannot run into a record; an empty one is
///   removed.
/// - A reader needs no lock: it reads sealed files whole and open files up to their last
///   complete line. A record's key is `<sequence>:<line>`, which sealing does not change.
/// - Marking appends keys to `replayed.jsonl`; nothing is rewritten. Sealed files that hold
///   only replayed records can be deleted by hand (or archived); their marks then match
///   nothing.
///
/// Records are listed in file order, then line order: oldest first within one writer; the
/// files of concurrent writers follow each other by sequence number.
pub struct DeadLetterDir {
    dir: PathBuf,
    rotate_bytes: u64,
    sync: bool,
    reader: Arc<Reader>,
    writer: Arc<Mutex<Option<OpenFile>>>,
}

impl fmt::Debug for DeadLetterDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetterDir")
            .field("dir", &self.dir)
            .field("rotate_bytes", &self.rotate_bytes)
            .field("sync", &self.sync)
            .finish_non_exhaustive()
    }
}

impl DeadLetterDir {
    /// Opens `dir` (creating it if needed), seals the files of writers that are gone and
    /// checks that the directory is writable. Files rotate at [`DEFAULT_ROTATE_BYTES`]. The
    /// writer's own file is created on the first record, so opening a directory only to read it
    /// leaves no file behind. Blocking (plain `std::fs`): call it before serving or from
    /// `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// The directory cannot be created, read or written.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        seal_orphans(&dir)?;
        check_writable(&dir)?;
        Ok(Self {
            reader: Arc::new(Reader::new(Layout::Dir(dir.clone()))),
            dir,
            rotate_bytes: DEFAULT_ROTATE_BYTES.get(),
            sync: false,
            writer: Arc::new(Mutex::new(None)),
        })
    }

    /// Seals a file and starts the next once the next line would take it past `bytes`.
    pub fn with_rotate_bytes(mut self, bytes: NonZeroU64) -> Self {
        self.rotate_bytes = bytes.get();
        self
    }

    /// Also `fsync` after every record and mark (slower; survives a machine crash, not only a
    /// process crash).
    pub fn with_sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        if let Some(reader) = Arc::get_mut(&mut self.reader) {
            reader.sync = sync;
        }
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files of the directory, sealed or open, in sequence order.
    ///
    /// # Errors
    ///
    /// The directory cannot be read.
    pub fn files(&self) -> io::Result<Vec<PathBuf>> {
        Ok(Layout::Dir(self.dir.clone())
            .segments()?
            .into_iter()
            .map(|s| s.path)
            .collect())
    }
}

/// Checks the directory takes a new file, leaving nothing behind.
fn check_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(".write-check-{}{TMP_SUFFIX}", std::process::id()));
    let result = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .map(drop);
    let _ = fs::remove_file(&probe);
    result
}

/// Seals every open file no writer holds (its writer is gone): terminates a torn last line,
/// renames it to its sealed name, or removes it when empty. Removes unlocked temporary files.
fn seal_orphans(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if name.starts_with('.') && name.ends_with(TMP_SUFFIX) {
            if let Ok(file) = OpenOptions::new().append(true).open(&path)
                && file.try_lock().is_ok()
            {
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        let Some((seq, false)) = parse_name(name) else {
            continue;
        };
        let mut file = match OpenOptions::new().read(true).append(true).open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(error)) => return Err(error),
        }
        if !path.exists() {
            continue; // sealed by its writer just now
        }
        let len = file.metadata()?.len();
        if len == 0 {
            fs::remove_file(&path)?;
            continue;
        }
        file.seek(SeekFrom::Start(len - 1))?;
        let mut last = [0u8; 1];
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
        file.sync_all()?;
        fs::rename(&path, dir.join(sealed_name(seq)))?;
        tracing::info!(
            file = %path.display(),
            "Sealed a dead-letter file left open by a writer that is gone."
        );
    }
    Ok(())
}

/// Creates the next file, locked before it gets its name so no one seals it under us.
fn create_open_file(dir: &Path) -> io::Result<OpenFile> {
    let mut seq = Layout::Dir(dir.to_path_buf())
        .segments()?
        .last()
        .map_or(1, |s| s.seq + 1);
    for _ in 0..1000 {
        let tmp = dir.join(format!(".{}{TMP_SUFFIX}", open_name(seq)));
        let file = match OpenOptions::new().append(true).create_new(true).open(&tmp) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                seq += 1;
                continue;
            }
            Err(error) => return Err(error),
        };
        if file.try_lock().is_err() {
            let _ = fs::remove_file(&tmp);
            seq += 1;
            continue;
        }
        let linked = fs::hard_link(&tmp, dir.join(open_name(seq)));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok(OpenFile { seq, file, len: 0 }),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => seq += 1,
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::other(
        "no free dead-letter file name after 1000 tries",
    ))
}

fn append_line(
    dir: &Path,
    writer: &Mutex<Option<OpenFile>>,
    line: &[u8],
    rotate_bytes: u64,
    sync: bool,
) -> io::Result<()> {
    let mut open = lock(writer);
    if let Some(current) = open.as_ref()
        && current.len > 0
        && current.len + line.len() as u64 > rotate_bytes
    {
        let current = open.take().expect("checked just above");
        fs::rename(
            dir.join(open_name(current.seq)),
            dir.join(sealed_name(current.seq)),
        )?;
        drop(current);
    }
    if open.is_none() {
        *open = Some(create_open_file(dir)?);
    }
    let current = open.as_mut().expect("created just above");
    let written = current.file.write_all(line).and_then(|()| {
        if sync {
            current.file.sync_data()
        } else {
            Ok(())
        }
    });
    match written {
        Ok(()) => {
            current.len += line.len() as u64;
            Ok(())
        }
        Err(error) => {
            // The file may end in a torn line: leave it (the next opener of the directory
            // seals it, terminating the line) and write the next record to a new file.
            *open = None;
            Err(error)
        }
    }
}

#[async_trait]
impl DeadLetterSink for DeadLetterDir {
    async fn append(&self, record: Record) -> Result<(), DeadLetterError> {
        let line = record.to_line()?;
        let (dir, writer) = (self.dir.clone(), Arc::clone(&self.writer));
        let (rotate, sync) = (self.rotate_bytes, self.sync);
        blocking(move || append_line(&dir, &writer, &line, rotate, sync)).await
    }
}

#[async_trait]
impl DeadLetterStore for DeadLetterDir {
    async fn pending(&self) -> Result<Listing, DeadLetterError> {
        let reader = Arc::clone(&self.reader);
        blocking(move || reader.pending()).await
    }

    async fn mark_replayed(&self, keys: &[RecordKey]) -> Result<(), DeadLetterError> {
        let (reader, keys) = (Arc::clone(&self.reader), keys.to_vec());
        blocking(move || reader.mark(&keys)).await
    }

    async fn pending_count(&self) -> Result<u64, DeadLetterError> {
        let reader = Arc::clone(&self.reader);
        blocking(move || reader.count()).await
    }

    fn location(&self) -> String {
        self.reader.layout.describe()
    }
}

/// Appends each record as one JSON line to a single file that never rotates (the v0.1 layout;
/// prefer [`DeadLetterDir`]). Writes run on tokio's blocking pool; each line is written with a
/// single `write_all`, and optionally synced to disk. Marks go to `<file>.replayed.jsonl`.
pub struct JsonlDeadLetters {
    path: PathBuf,
    file: Arc<Mutex<File>>,
    sync: bool,
    reader: Arc<Reader>,
}

impl fmt::Debug for JsonlDeadLetters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlDeadLetters")
            .field("path", &self.path)
            .field("sync", &self.sync)
            .finish_non_exhaustive()
    }
}

impl JsonlDeadLetters {
    /// Opens (creating if needed) `path` for appending. A torn last line (a crash mid-write)
    /// is terminated first, so it cannot run into the next record.
    ///
    /// # Errors
    ///
    /// The file cannot be opened, read or written.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        if len > 0 {
            file.seek(SeekFrom::Start(len - 1))?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok(Self {
            reader: Arc::new(Reader::new(Layout::File(path.clone()))),
            path,
            file: Arc::new(Mutex::new(file)),
            sync: false,
        })
    }

    /// Also `fsync` after every entry (slower; survives a machine crash, not only a process
    /// crash).
    pub fn with_sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        if let Some(reader) = Arc::get_mut(&mut self.reader) {
            reader.sync = sync;
        }
        self
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl DeadLetterSink for JsonlDeadLetters {
    async fn append(&self, record: Record) -> Result<(), DeadLetterError> {
        let line = record.to_line()?;
        let file = Arc::clone(&self.file);
        let sync = self.sync;
        blocking(move || {
            let mut file = lock(&file);
            file.write_all(&line)?;
            if sync {
                file.sync_data()?;
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl DeadLetterStore for JsonlDeadLetters {
    async fn pending(&self) -> Result<Listing, DeadLetterError> {
        let reader = Arc::clone(&self.reader);
        blocking(move || reader.pending()).await
    }

    async fn mark_replayed(&self, keys: &[RecordKey]) -> Result<(), DeadLetterError> {
        let (reader, keys) = (Arc::clone(&self.reader), keys.to_vec());
        blocking(move || reader.mark(&keys)).await
    }

    async fn pending_count(&self) -> Result<u64, DeadLetterError> {
        let reader = Arc::clone(&self.reader);
        blocking(move || reader.count()).await
    }

    fn location(&self) -> String {
        self.reader.layout.describe()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dead_letter::{Reason, SEGMENT_MESSAGE};

    fn record(n: u64) -> Record {
        Record::new(
            SEGMENT_MESSAGE,
            json!({"type": "track", "messageId": format!("m-{n}"), "userId": "u", "event": "E"}),
            Reason::Unreadable {
                error: "test".into(),
            },
        )
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn line_len() -> u64 {
        record(1).to_line().unwrap().len() as u64
    }

    #[test]
    fn file_names_parse_and_others_are_ignored() {
        assert_eq!(parse_name("dead-letters-000001.jsonl"), Some((1, false)));
        assert_eq!(parse_name("dead-letters-42.sealed.jsonl"), Some((42, true)));
        for other in [
            "dead-letters-.jsonl",
            "dead-letters-x1.jsonl",
            "replayed.jsonl",
            ".dead-letters-000001.jsonl.tmp",
            "dead-letters-1.json",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn opening_to_read_leaves_no_file_and_the_first_record_creates_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeadLetterDir::open(dir.path().join("dl")).unwrap();
        assert!(names(store.dir()).is_empty());
        assert_eq!(store.pending_count().await.unwrap(), 0);
        store.append(record(1)).await.unwrap();
        assert_eq!(names(store.dir()), ["dead-letters-000001.jsonl"]);
    }

    #[tokio::test]
    async fn files_rotate_by_size_and_sealed_ones_never_change() {
        let dir = tempfile::tempdir().unwrap();
        // Two records per file.
        let store = DeadLetterDir::open(dir.path())
            .unwrap()
            .with_rotate_bytes(NonZeroU64::new(2 * line_len()).unwrap());
        for n in 1..=5 {
            store.append(record(n)).await.unwrap();
        }
        assert_eq!(
            names(dir.path()),
            [
                "dead-letters-000001.sealed.jsonl",
                "dead-letters-000002.sealed.jsonl",
                "dead-letters-000003.jsonl",
            ]
        );
        let sealed = fs::read(dir.path().join("dead-letters-000001.sealed.jsonl")).unwrap();
        store.append(record(6)).await.unwrap();
        assert_eq!(
            fs::read(dir.path().join("dead-letters-000001.sealed.jsonl")).unwrap(),
            sealed
        );
        let listing = store.pending().await.unwrap();
        let keys: Vec<&str> = listing.records.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["1:1", "1:2", "2:1", "2:2", "3:1", "3:2"]);
        let ids: Vec<_> = listing
            .records
            .iter()
            .map(|s| s.record.id.clone().unwrap())
            .collect();
        assert_eq!(ids, ["m-1", "m-2", "m-3", "m-4", "m-5", "m-6"]);
        assert_eq!(store.pending_count().await.unwrap(), 6);
    }

    #[tokio::test]
    async fn a_reader_sees_complete_lines_only_while_a_writer_appends() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeadLetterDir::open(dir.path()).unwrap();
        store.append(record(1)).await.unwrap();
        // Another writer's half-written line at the end of its open file.
        let open = dir.path().join("dead-letters-000001.jsonl");
        let mut file = OpenOptions::new().append(true).open(&open).unwrap();
        let line = record(2).to_line().unwrap();
        file.write_all(&line[..line.len() / 2]).unwrap();
        let reader = DeadLetterDir::open(dir.path()).unwrap();
        let listing = reader.pending().await.unwrap();
        assert_eq!(listing.records.len(), 1);
        assert!(listing.errors.is_empty(), "{:?}", listing.errors);
        assert_eq!(reader.pending_count().await.unwrap(), 1);
        // The writer finishes the line: both see it, with the same keys as before.
        file.write_all(&line[line.len() / 2..]).unwrap();
        let listing = reader.pending().await.unwrap();
        let keys: Vec<&str> = listing.records.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["1:1", "1:2"]);
        assert_eq!(reader.pending_count().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_second_writer_gets_its_own_file_and_orphans_are_sealed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let first = DeadLetterDir::open(dir.path()).unwrap();
        first.append(record(1)).await.unwrap();
        let second = DeadLetterDir::open(dir.path()).unwrap();
        // The first writer still holds its file: it is not sealed under it.
        assert_eq!(names(dir.path()), ["dead-letters-000001.jsonl"]);
        second.append(record(2)).await.unwrap();
        first.append(record(3)).await.unwrap();
        assert_eq!(
            names(dir.path()),
            ["dead-letters-000001.jsonl", "dead-letters-000002.jsonl"]
        );
        let keys: Vec<String> = second
            .pending()
            .await
            .unwrap()
            .records
            .iter()
            .map(|s| s.key.to_string())
            .collect();
        assert_eq!(keys, ["1:1", "1:2", "2:1"]);

        // The first writer goes away mid-line: the next opener seals its file, terminating
        // the torn line so it cannot run into a record, and reports it as one bad line.
        let torn = record(4).to_line().unwrap();
        {
            let open = lock(&first.writer);
            let mut file = &open.as_ref().unwrap().file;
            file.write_all(&torn[..10]).unwrap();
        }
        drop(first);
        let third = DeadLetterDir::open(dir.path()).unwrap();
        assert_eq!(
            names(dir.path()),
            [
                "dead-letters-000001.sealed.jsonl",
                "dead-letters-000002.jsonl"
            ]
        );
        let listing = third.pending().await.unwrap();
        assert_eq!(listing.records.len(), 3);
        assert_eq!(listing.errors.len(), 1);
        assert!(
            listing.errors[0]
                .to_string()
                .ends_with("dead-letters-000001.sealed.jsonl, line 3: not JSON (unexpected end of input at column 10)"),
            "{}",
            listing.errors[0]
        );
        assert_eq!(third.pending_count().await.unwrap(), 4);
    }

    #[tokio::test]
    async fn an_empty_orphan_is_removed_and_marks_survive_sealing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("dead-letters-000007.jsonl"), b"").unwrap();
        let store = DeadLetterDir::open(dir.path()).unwrap();
        assert!(names(dir.path()).is_empty());
        store.append(record(1)).await.unwrap();
        store.append(record(2)).await.unwrap();
        let keys: Vec<RecordKey> = store
            .pending()
            .await
            .unwrap()
            .records
            .into_iter()
            .map(|s| s.key)
            .collect();
        assert_eq!(keys[0].as_str(), "1:1");
        store.mark_replayed(&keys[..1]).await.unwrap();
        drop(store);
        let reopened = DeadLetterDir::open(dir.path()).unwrap();
        assert_eq!(
            names(dir.path()),
            ["dead-letters-000001.sealed.jsonl", "replayed.jsonl"]
        );
        let listing = reopened.pending().await.unwrap();
        assert_eq!(listing.records.len(), 1);
        assert_eq!(listing.records[0].key.as_str(), "1:2");
        assert_eq!(reopened.pending_count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_single_file_terminates_a_torn_line_and_keeps_marks_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let line = record(1).to_line().unwrap();
        fs::write(&path, &line[..line.len() - 5]).unwrap();
        let store = JsonlDeadLetters::open(&path).unwrap();
        store.append(record(2)).await.unwrap();
        let listing = store.pending().await.unwrap();
        assert_eq!(listing.errors.len(), 1);
        assert_eq!(listing.records.len(), 1);
        assert_eq!(listing.records[0].key.as_str(), "2");
        store
            .mark_replayed(&[listing.records[0].key.clone()])
            .await
            .unwrap();
        assert!(dir.path().join("dead.jsonl.replayed.jsonl").exists());
        assert!(store.pending().await.unwrap().records.is_empty());
        assert_eq!(store.pending_count().await.unwrap(), 1, "the bad line");
        assert_eq!(store.location(), path.display().to_string());
    }

    #[test]
    fn a_directory_that_cannot_be_created_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, b"x").unwrap();
        assert!(DeadLetterDir::open(file.join("sub")).is_err());
    }
}
