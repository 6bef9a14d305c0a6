//! The spool: a write-ahead log of accepted requests on local disk.
//!
//! A request is acknowledged only after its record is written and `fdatasync`ed. One appender
//! thread owns the files and commits groups of records with one sync (group commit), so many
//! concurrent requests share each sync. The writer task ([`crate::writer`]) drains records to
//! ClickHouse and reports back with two more kinds of record:
//!
//! * **seal** `first..=last` — written (and synced) *before* a ClickHouse insert: the records
//!   that form that insert. A replay re-forms exactly the same insert with the same
//!   `insert_deduplication_token`, so ClickHouse stores it once even if the first attempt
//!   succeeded just before a crash.
//! * **commit** `last` — written after ClickHouse confirmed everything up to `last`. Not
//!   synced: losing it only means a replay that ClickHouse deduplicates.
//!
//! Files: `seg-<first seq>.wal` segments, rotated past `segment_bytes`; a closed segment is
//! deleted once every record in it is committed. A new segment is started at every start, so
//! a torn tail (from a crash mid-write, never acknowledged) is left alone and skipped.
//! `spool.id` names this spool in dedup tokens; `spool.lock` keeps a second process out.
//!
//! Frame: `len u32 | crc32 u32 | kind u8 | seq u64 | first u64 | payload[len]`, little
//! endian; the CRC covers everything after itself.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc, oneshot};

use crate::store::StoreError;

const HEADER: usize = 25;
const KIND_DATA: u8 = 1;
const KIND_SEAL: u8 = 2;
const KIND_COMMIT: u8 = 3;
/// A frame larger than this is corruption, not data.
const MAX_FRAME: usize = 256 << 20;
/// Most bytes written per group commit.
const GROUP_BYTES: usize = 8 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    Data { seq: u64, payload: Vec<u8> },
    Seal { first: u64, last: u64 },
    Commit { last: u64 },
}

fn encode_frame(out: &mut Vec<u8>, kind: u8, seq: u64, first: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(kind);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Reads one frame. `Ok(None)` at a clean end of file; `Err` on a torn or corrupt frame.
fn read_frame(reader: &mut impl Read) -> io::Result<Option<(Frame, usize)>> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match reader.read(&mut header[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "torn header")),
            n => got += n,
        }
    }
    let word = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let long = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let len = word(0) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let crc = word(4);
    let kind = header[8];
    let seq = long(9);
    let first = long(17);
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[8..]);
    hasher.update(&payload);
    if hasher.finalize() != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "checksum mismatch",
        ));
    }
    let frame = match kind {
        KIND_DATA => Frame::Data { seq, payload },
        KIND_SEAL => Frame::Seal { first, last: seq },
        KIND_COMMIT => Frame::Commit { last: seq },
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unknown frame kind",
            ));
        }
    };
    Ok(Some((frame, HEADER + len)))
}

fn segment_name(first_seq: u64) -> String {
    format!("seg-{first_seq:020}.wal")
}

fn segment_first_seq(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("seg-")?
        .strip_suffix(".wal")?
        .parse()
        .ok()
}

/// Segment files in order.
fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if let Some(first) = segment_first_seq(&path) {
            segments.push((first, path));
        }
    }
    segments.sort();
    Ok(segments)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What a scan of the spool directory found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The next data sequence number to hand out.
    pub next_seq: u64,
    /// Everything up to here is in ClickHouse.
    pub committed: u64,
    /// Uncommitted data records: (seq, frame bytes).
    pub pending: Vec<(u64, u64)>,
    /// Seals of uncommitted records, in order.
    pub seals: Vec<(u64, u64)>,
    /// Segments with the highest seq any of their records refers to.
    segments: Vec<(PathBuf, u64)>,
    /// Bytes after a torn or corrupt frame, skipped.
    pub skipped_bytes: u64,
}

/// Scans every segment: the state to resume from.
fn recover(dir: &Path) -> io::Result<Recovered> {
    let mut r = Recovered {
        next_seq: 1,
        ..Recovered::default()
    };
    let mut data: Vec<(u64, u64)> = Vec::new();
    let mut seals = Vec::new();
    for (first_seq, path) in list_segments(dir)? {
        r.next_seq = r.next_seq.max(first_seq);
        let file = File::open(&path)?;
        let total = file.metadata()?.len();
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut offset = 0u64;
        let mut max_ref = 0u64;
        loop {
            match read_frame(&mut reader) {
                Ok(Some((frame, size))) => {
                    offset += size as u64;
                    match frame {
                        Frame::Data { seq, .. } => {
                            data.push((seq, size as u64));
                            r.next_seq = r.next_seq.max(seq + 1);
                            max_ref = max_ref.max(seq);
                        }
                        Frame::Seal { first, last } => {
                            seals.push((first, last));
                            max_ref = max_ref.max(last);
                        }
                        Frame::Commit { last } => r.committed = r.committed.max(last),
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(
                        segment = %path.display(),
                        offset,
                        skipped = total - offset,
                        error = %error,
                        "Torn or corrupt spool frame; skipping the rest of the segment (never acknowledged)"
                    );
                    r.skipped_bytes += total - offset;
                    break;
                }
            }
        }
        r.segments.push((path, max_ref));
    }
    r.pending = data.into_iter().filter(|(s, _)| *s > r.committed).collect();
    r.seals = seals
        .into_iter()
        .filter(|(_, last)| *last > r.committed)
        .collect();
    r.seals.sort();
    r.seals.dedup();
    Ok(r)
}

/// Counters shared by the appender, the writer and the HTTP handlers.
#[derive(Debug)]
pub struct SpoolShared {
    pub id: String,
    pub dir: PathBuf,
    pub high_water_bytes: u64,
    pub pending_bytes: AtomicU64,
    pub pending_records: AtomicU64,
    /// Highest data seq that is synced to disk (0: none yet).
    pub durable_seq: AtomicU64,
    /// A write or sync failed: the file state is unknown, stop accepting.
    pub broken: AtomicBool,
    /// Signalled after every group commit.
    pub appended: Notify,
}

impl SpoolShared {
    pub fn is_full(&self) -> bool {
        self.pending_bytes.load(Ordering::Relaxed) > self.high_water_bytes
            || self.broken.load(Ordering::Relaxed)
    }
}

/// A record handed to the writer in memory, right after it became durable.
#[derive(Debug)]
pub struct Appended<T> {
    pub seq: u64,
    pub size: u64,
    pub value: T,
}

/// Roughly how many bytes of memory a value holds: what the memory queue is bounded by.
pub trait Weigh {
    fn weight(&self) -> usize;
}

/// The writer's end of the memory queue: durable records in order, bounded by the total
/// [`Weigh::weight`] waiting in it. When a record would pass the bound it is not queued;
/// the writer then reads it from disk (and decodes it again).
#[derive(Debug)]
pub struct MemoryQueue<T> {
    rx: mpsc::UnboundedReceiver<Appended<T>>,
    queued: Arc<AtomicUsize>,
}

impl<T: Weigh> MemoryQueue<T> {
    pub fn try_recv(&mut self) -> Option<Appended<T>> {
        let got = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(got.value.weight(), Ordering::SeqCst);
        Some(got)
    }

    /// Waits for the next record (the writer polls with `try_recv`; the tests wait).
    #[cfg(test)]
    pub async fn recv(&mut self) -> Option<Appended<T>> {
        let got = self.rx.recv().await?;
        self.queued.fetch_sub(got.value.weight(), Ordering::SeqCst);
        Some(got)
    }
}

/// The appender's end of the memory queue.
struct MemorySender<T> {
    tx: mpsc::UnboundedSender<Appended<T>>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl<T: Weigh> MemorySender<T> {
    /// Queues the record unless that would pass the bound (or the writer is gone).
    fn offer(&self, appended: Appended<T>) {
        let weight = appended.value.weight();
        let before = self.queued.fetch_add(weight, Ordering::SeqCst);
        if before.saturating_add(weight) > self.max_bytes || self.tx.send(appended).is_err() {
            self.queued.fetch_sub(weight, Ordering::SeqCst);
        }
    }
}

enum Op<T> {
    Append {
        payload: Vec<u8>,
        value: T,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    Seal {
        first: u64,
        last: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Commit {
        last: u64,
    },
}

/// The handle to the spool. Cloning shares the same appender.
pub struct Spool<T> {
    ops: mpsc::Sender<Op<T>>,
    pub shared: Arc<SpoolShared>,
}

impl<T> Clone for Spool<T> {
    fn clone(&self) -> Self {
        Spool {
            ops: self.ops.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// What `open` returns besides the handle.
pub struct Opened<T> {
    pub spool: Spool<T>,
    /// Durable records in order, right after their sync; a full queue drops (the writer
    /// then reads them from disk).
    pub appended: MemoryQueue<T>,
    pub recovered: Recovered,
    /// The appender thread; it ends when every `Spool` handle is dropped.
    pub thread: std::thread::JoinHandle<()>,
}

impl<T: Weigh + Send + 'static> Spool<T> {
    /// Opens (or creates) the spool in `dir`, scans it, and starts the appender thread.
    /// `memory_queue_bytes` bounds the decoded records held for the writer.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        high_water_bytes: u64,
        memory_queue_bytes: usize,
    ) -> io::Result<Opened<T>> {
        fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("spool.lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "spool directory {} is in use by another collector; give each its own",
                    dir.display()
                ),
            )
        })?;
        let id = spool_id(dir)?;
        let recovered = recover(dir)?;
        let pending_bytes: u64 = recovered.pending.iter().map(|(_, s)| s).sum();
        let shared = Arc::new(SpoolShared {
            id,
            dir: dir.to_owned(),
            high_water_bytes,
            pending_bytes: AtomicU64::new(pending_bytes),
            pending_records: AtomicU64::new(recovered.pending.len() as u64),
            durable_seq: AtomicU64::new(recovered.next_seq - 1),
            broken: AtomicBool::new(false),
            appended: Notify::new(),
        });
        let (ops_tx, ops_rx) = mpsc::channel(4096);
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let mut appender = Appender {
            dir: dir.to_owned(),
            segment_bytes,
            shared: shared.clone(),
            next_seq: recovered.next_seq,
            committed: recovered.committed,
            closed: recovered.segments.iter().cloned().collect(),
            current: None,
            out: MemorySender {
                tx: out_tx,
                queued: queued.clone(),
                max_bytes: memory_queue_bytes,
            },
            _lock: lock,
        };
        appender.delete_committed();
        appender.start_segment()?;
        let thread = std::thread::Builder::new()
            .name("spoor-spool".into())
            .spawn(move || appender.run(ops_rx))?;
        Ok(Opened {
            spool: Spool {
                ops: ops_tx,
                shared,
            },
            appended: MemoryQueue { rx: out_rx, queued },
            recovered,
            thread,
        })
    }

    /// Appends a record; resolves with its seq once it is synced to disk.
    pub async fn append(&self, payload: Vec<u8>, value: T) -> Result<u64, StoreError> {
        if self.shared.broken.load(Ordering::Relaxed) {
            return Err(StoreError::Io(
                "the spool is broken after a failed write; restart the collector".into(),
            ));
        }
        let (reply, done) = oneshot::channel();
        self.ops
            .send(Op::Append {
                payload,
                value,
                reply,
            })
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        done.await.map_err(|_| StoreError::ShuttingDown)?
    }

    /// Records (and syncs) that records `first..=last` form one ClickHouse insert.
    pub async fn seal(&self, first: u64, last: u64) -> Result<(), StoreError> {
        let (reply, done) = oneshot::channel();
        self.ops
            .send(Op::Seal { first, last, reply })
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        done.await.map_err(|_| StoreError::ShuttingDown)?
    }

    /// Records that everything up to `last` is in ClickHouse; old segments may go.
    pub async fn commit(&self, last: u64) {
        // If the appender is gone the commit is lost, which only costs a deduplicated replay.
        let _ = self.ops.send(Op::Commit { last }).await;
    }
}

/// The spool's identity, made once and kept in `spool.id`.
fn spool_id(dir: &Path) -> io::Result<String> {
    let path = dir.join("spool.id");
    match fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        _ => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let tmp = dir.join("spool.id.tmp");
            let mut f = File::create(&tmp)?;
            f.write_all(id.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            sync_dir(dir)?;
            Ok(id)
        }
    }
}

struct Segment {
    path: PathBuf,
    file: File,
    bytes: u64,
    max_ref: u64,
}

struct Appender<T> {
    dir: PathBuf,
    segment_bytes: u64,
    shared: Arc<SpoolShared>,
    next_seq: u64,
    committed: u64,
    closed: VecDeque<(PathBuf, u64)>,
    current: Option<Segment>,
    out: MemorySender<T>,
    _lock: File,
}

impl<T: Weigh> Appender<T> {
    fn start_segment(&mut self) -> io::Result<()> {
        if let Some(old) = self.current.take() {
            self.closed.push_back((old.path, old.max_ref));
        }
        let path = self.dir.join(segment_name(self.next_seq));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let bytes = file.metadata()?.len();
        sync_dir(&self.dir)?;
        self.current = Some(Segment {
            path,
            file,
            bytes,
            max_ref: 0,
        });
        Ok(())
    }

    /// Deletes closed segments whose records are all committed.
    fn delete_committed(&mut self) {
        while let Some((path, max_ref)) = self.closed.front() {
            if *max_ref > self.committed {
                break;
            }
            if let Err(error) = fs::remove_file(path) {
                tracing::warn!(segment = %path.display(), error = %error, "Could not delete a spool segment");
            }
            self.closed.pop_front();
        }
    }

    fn run(mut self, mut ops: mpsc::Receiver<Op<T>>) {
        let mut buf = Vec::with_capacity(1 << 20);
        while let Some(op) = ops.blocking_recv() {
            let mut group = vec![op];
            let mut bytes = 0usize;
            while bytes < GROUP_BYTES {
                match ops.try_recv() {
                    Ok(op) => {
                        if let Op::Append { payload, .. } = &op {
                            bytes += payload.len();
                        }
                        group.push(op);
                    }
                    Err(_) => break,
                }
            }
            self.write_group(group, &mut buf);
        }
        if let Some(current) = &self.current {
            let _ = current.file.sync_data();
        }
    }

    fn write_group(&mut self, group: Vec<Op<T>>, buf: &mut Vec<u8>) {
        buf.clear();
        let mut appended = Vec::new();
        let mut sealed = Vec::new();
        let mut commit = None;
        let first_seq = self.next_seq;
        let mut max_ref = 0;
        for op in group {
            match op {
                Op::Append {
                    payload,
                    value,
                    reply,
                } => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let before = buf.len();
                    encode_frame(buf, KIND_DATA, seq, 0, &payload);
                    let size = (buf.len() - before) as u64;
                    max_ref = seq;
                    appended.push((seq, size, value, reply));
                }
                Op::Seal { first, last, reply } => {
                    encode_frame(buf, KIND_SEAL, last, first, &[]);
                    max_ref = max_ref.max(last);
                    sealed.push(reply);
                }
                Op::Commit { last } => {
                    encode_frame(buf, KIND_COMMIT, last, 0, &[]);
                    commit = Some(commit.unwrap_or(0).max(last));
                }
            }
        }
        let needs_sync = !appended.is_empty() || !sealed.is_empty();
        let result = self.write_and_sync(buf, needs_sync, max_ref);
        if let Err(error) = &result {
            // After a failed fsync the page cache may not match the disk: never retry it.
            tracing::error!(error = %error, "Spool write failed; refusing new batches until restart");
            self.shared.broken.store(true, Ordering::SeqCst);
            self.next_seq = first_seq;
            let message = format!("spool write failed: {error}");
            for (_, _, _, reply) in appended {
                let _ = reply.send(Err(StoreError::Io(message.clone())));
            }
            for reply in sealed {
                let _ = reply.send(Err(StoreError::Io(message.clone())));
            }
            return;
        }
        let mut added = 0u64;
        let count = appended.len() as u64;
        let mut replies = Vec::with_capacity(appended.len());
        for (seq, size, value, reply) in appended {
            added += size;
            // Hand the decoded rows to the writer; if its queue is full it reads the disk.
            self.out.offer(Appended { seq, size, value });
            replies.push((seq, reply));
        }
        self.shared.pending_bytes.fetch_add(added, Ordering::SeqCst);
        self.shared
            .pending_records
            .fetch_add(count, Ordering::SeqCst);
        // Only after the in-memory hand-off, so a writer that sees the new durable seq finds
        // either the record in its queue or a gap it fills from disk.
        self.shared
            .durable_seq
            .store(self.next_seq - 1, Ordering::SeqCst);
        for (seq, reply) in replies {
            let _ = reply.send(Ok(seq));
        }
        for reply in sealed {
            let _ = reply.send(Ok(()));
        }
        self.shared.appended.notify_one();
        if let Some(last) = commit {
            self.committed = self.committed.max(last);
            self.delete_committed();
        }
        let rotate = self
            .current
            .as_ref()
            .is_some_and(|c| c.bytes >= self.segment_bytes);
        if rotate && let Err(error) = self.start_segment() {
            tracing::error!(error = %error, "Could not start a new spool segment");
            self.shared.broken.store(true, Ordering::SeqCst);
        }
    }

    fn write_and_sync(&mut self, buf: &[u8], sync: bool, max_ref: u64) -> io::Result<()> {
        let current = self
            .current
            .as_mut()
            .ok_or_else(|| io::Error::other("no open segment"))?;
        current.file.write_all(buf)?;
        if sync {
            current.file.sync_data()?;
        }
        current.bytes += buf.len() as u64;
        current.max_ref = current.max_ref.max(max_ref);
        Ok(())
    }
}

/// Reads data records back from the segment files, for the writer to fill gaps (start-up
/// replay, or records its memory queue had no room for).
#[derive(Debug)]
pub struct DiskReader {
    dir: PathBuf,
    /// Where the next expected record starts: (segment path, offset, seq expected there).
    cursor: Option<(PathBuf, u64, u64)>,
}

impl DiskReader {
    pub fn new(dir: &Path) -> DiskReader {
        DiskReader {
            dir: dir.to_owned(),
            cursor: None,
        }
    }

    /// Data records with `from <= seq <= to`, in order, at most `max_bytes` of payload (but at
    /// least one record). Stops early at the end of what is on disk.
    pub fn read(
        &mut self,
        from: u64,
        to: u64,
        max_bytes: usize,
    ) -> io::Result<Vec<(u64, u64, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut total = 0usize;
        let segments = list_segments(&self.dir)?;
        // Resume where the last read stopped if it stopped right before `from`.
        let (start_index, mut offset) = match &self.cursor {
            Some((path, offset, seq)) if *seq == from => {
                match segments.iter().position(|(_, p)| p == path) {
                    Some(i) => (i, *offset),
                    None => (self.start_of(&segments, from), 0),
                }
            }
            _ => (self.start_of(&segments, from), 0),
        };
        for (_, path) in segments.iter().skip(start_index) {
            let mut file = match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    offset = 0;
                    continue;
                }
                Err(e) => return Err(e),
            };
            file.seek(SeekFrom::Start(offset))?;
            let mut reader = BufReader::with_capacity(1 << 20, file);
            // Until the end of this segment (or an unfinished frame of the live one).
            while let Ok(Some((frame, size))) = read_frame(&mut reader) {
                if let Frame::Data { seq, payload } = frame {
                    if seq > to {
                        self.cursor = Some((path.clone(), offset, seq));
                        return Ok(out);
                    }
                    offset += size as u64;
                    if seq >= from {
                        total += payload.len();
                        out.push((seq, size as u64, payload));
                        if total >= max_bytes || seq == to {
                            self.cursor = Some((path.clone(), offset, seq + 1));
                            return Ok(out);
                        }
                    }
                } else {
                    offset += size as u64;
                }
            }
            offset = 0;
        }
        self.cursor = None;
        Ok(out)
    }

    /// The index of the last segment that starts at or before `seq`.
    fn start_of(&self, segments: &[(u64, PathBuf)], seq: u64) -> usize {
        segments
            .iter()
            .rposition(|(first, _)| *first <= seq)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Weigh for u32 {
        fn weight(&self) -> usize {
            4
        }
    }

    fn open(dir: &Path) -> Opened<u32> {
        Spool::<u32>::open(dir, 4096, 1 << 30, 1 << 20).unwrap()
    }

    #[test]
    fn frames_round_trip_and_detect_damage() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, KIND_DATA, 7, 0, b"hello");
        encode_frame(&mut buf, KIND_SEAL, 9, 3, &[]);
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r).unwrap().unwrap().0,
            Frame::Data {
                seq: 7,
                payload: b"hello".to_vec()
            }
        );
        assert_eq!(
            read_frame(&mut r).unwrap().unwrap().0,
            Frame::Seal { first: 3, last: 9 }
        );
        assert!(read_frame(&mut r).unwrap().is_none());
        // Any cut is a torn frame, any flipped byte a checksum error.
        for cut in 1..HEADER + 5 {
            let mut r = &buf[..cut];
            assert!(read_frame(&mut r).is_err(), "cut {cut}");
        }
        for at in 4..HEADER + 5 {
            let mut damaged = buf.clone();
            damaged[at] ^= 0x40;
            let mut r = &damaged[..];
            assert!(read_frame(&mut r).is_err(), "flip {at}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn append_recover_commit_delete() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut opened = open(dir.path());
            for i in 0..100u32 {
                let seq = opened.spool.append(vec![i as u8; 100], i).await.unwrap();
                assert_eq!(seq, u64::from(i) + 1);
                let got = opened.appended.recv().await.unwrap();
                assert_eq!((got.seq, got.value), (seq, i));
            }
            opened.spool.seal(1, 60).await.unwrap();
            opened.spool.commit(60).await;
            opened.spool.seal(61, 80).await.unwrap();
            assert_eq!(opened.spool.shared.durable_seq.load(Ordering::SeqCst), 100);
            drop(opened.spool);
            opened.thread.join().unwrap();
        }
        let opened = open(dir.path());
        let r = &opened.recovered;
        assert_eq!(r.next_seq, 101);
        assert_eq!(r.committed, 60);
        assert_eq!(r.pending.first().map(|p| p.0), Some(61));
        assert_eq!(r.pending.len(), 40);
        assert_eq!(r.seals, vec![(61, 80)]);
        // Records can be read back from disk, in bounded chunks.
        let mut reader = DiskReader::new(dir.path());
        let chunk = reader.read(61, 100, 250).unwrap();
        assert_eq!(
            chunk.iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![61, 62, 63]
        );
        let rest = reader.read(64, 100, 1 << 20).unwrap();
        assert_eq!(rest.len(), 37);
        assert_eq!(rest[0].2, vec![63u8; 100]);
        // Segments wholly committed were deleted (4 KiB segments of ~125-byte frames).
        let segments = list_segments(dir.path()).unwrap();
        assert!(segments[0].0 > 1, "{segments:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn torn_tail_is_skipped_and_a_second_process_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let opened = open(dir.path());
        opened.spool.append(b"one".to_vec(), 1).await.unwrap();
        assert!(Spool::<u32>::open(dir.path(), 4096, 1 << 30, 1 << 20).is_err());
        drop(opened.spool);
        opened.thread.join().unwrap();
        // A crash mid-write leaves half a frame at the end of the segment.
        let (_, path) = list_segments(dir.path()).unwrap().pop().unwrap();
        let mut buf = Vec::new();
        encode_frame(&mut buf, KIND_DATA, 2, 0, b"two");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&buf[..buf.len() - 1]).unwrap();
        drop(f);
        let opened = open(dir.path());
        assert_eq!(opened.recovered.next_seq, 2);
        assert_eq!(opened.recovered.pending.len(), 1);
        assert_eq!(opened.recovered.skipped_bytes, buf.len() as u64 - 1);
        // New appends go to a new segment and continue the sequence.
        assert_eq!(opened.spool.append(b"two".to_vec(), 2).await.unwrap(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_memory_queue_drops_to_disk_only() {
        let dir = tempfile::tempdir().unwrap();
        // Room for two 4-byte values.
        let mut opened = Spool::<u32>::open(dir.path(), 1 << 20, 1 << 30, 8).unwrap();
        for i in 0..5u32 {
            opened.spool.append(vec![1; 10], i).await.unwrap();
        }
        let mut seen = Vec::new();
        while let Some(a) = opened.appended.try_recv() {
            seen.push(a.seq);
        }
        assert_eq!(seen, vec![1, 2]);
        let mut reader = DiskReader::new(dir.path());
        assert_eq!(reader.read(3, 5, 1 << 20).unwrap().len(), 3);
        assert_eq!(
            opened.spool.shared.pending_records.load(Ordering::SeqCst),
            5
        );
        // Taking them out makes room again.
        opened.spool.append(vec![1; 10], 5).await.unwrap();
        assert_eq!(opened.appended.try_recv().map(|a| a.seq), Some(6));
    }
}
