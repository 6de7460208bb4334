//! The pipelined publisher: a thread writes every request (paced or back to back) while
//! this one reads the replies, so the writer never waits on a reply. It shows how fast a
//! server can take publishes when the client does not wait — more than any one waiting
//! backend sends, which is why it is a separate line and not the headline.

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Instant;

use super::reply::ReplyReader;
use super::{sleep_until, ConnJob, PubOutcome};
use crate::harness::mono_ns;
use crate::Res;

pub(super) fn run(stream: TcpStream, job: ConnJob) -> PubOutcome {
    let mut out = PubOutcome::default();
    let n = job.msgs.len();
    let reader = match stream.try_clone() {
        Ok(s) => ReplyReader::new(s),
        Err(e) => {
            out.failed = n;
            out.errors.push(format!("publisher clone: {e}"));
            return out;
        }
    };
    let deadline = job.deadline;
    // The writer hands each request's write time to the reader: HTTP/1.1 answers in
    // order, so reply k belongs to the k-th time received.
    let (tx, rx) = mpsc::channel();
    let writer = thread::spawn(move || write_requests(stream, &job, &tx));
    read_replies(reader, n, deadline, &rx, &mut out);
    match writer.join() {
        Ok(Ok(first)) => out.first_write = first,
        Ok(Err(e)) => out.errors.push(e),
        Err(_) => out.errors.push("publisher writer panicked".into()),
    }
    out.failed = n - out.ok;
    out
}

/// Writes every request; returns the time of the first write.
fn write_requests(mut s: TcpStream, job: &ConnJob, written: &Sender<u64>) -> Res<u64> {
    let mut first = 0;
    for j in 0..job.msgs.len() {
        if let Some(due) = job.lane.due(j) {
            sleep_until(due);
        }
        let now = mono_ns();
        if j == 0 {
            first = now;
        }
        let _ = written.send(now);
        s.write_all(&job.request(j, now))
            .map_err(|e| format!("publish write #{j}: {e}"))?;
    }
    Ok(first)
}

fn read_replies(
    mut reader: ReplyReader,
    n: usize,
    deadline: Instant,
    written: &Receiver<u64>,
    out: &mut PubOutcome,
) {
    for k in 0..n {
        let r = match reader.next_reply(deadline) {
            Ok(r) => r,
            Err(e) => {
                out.errors
                    .push(format!("only {k} of {n} publish replies: {e}"));
                return;
            }
        };
        // The time was sent before the request was written, so it is already there.
        let at = written.try_recv().unwrap_or_else(|_| mono_ns());
        out.note_reply(r.status, &r.body, at, mono_ns());
    }
}
