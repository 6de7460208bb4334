//! The waiting publisher: one request, then its reply, then the next request, on one
//! keep-alive connection — how real backends publish (requests, curl, Go `http.Client`,
//! `fetch`). One connection can then publish no faster than one message per reply
//! round trip, which is what a server's publish path costs its users.
//!
//! Paced, a message whose due time passes while the connection still waits for the
//! previous reply goes out right after that reply, stamped with its scheduled time, so
//! a server that falls behind shows it as delivery latency instead of hiding it.

use std::io::Write;
use std::net::TcpStream;

use super::reply::ReplyReader;
use super::{sleep_until, ConnJob, PubOutcome};
use crate::harness::mono_ns;

pub(super) fn run(stream: TcpStream, job: &ConnJob) -> PubOutcome {
    let mut out = PubOutcome::default();
    let n = job.msgs.len();
    let mut reader = match stream.try_clone() {
        Ok(s) => ReplyReader::new(s),
        Err(e) => {
            out.failed = n;
            out.errors.push(format!("publisher clone: {e}"));
            return out;
        }
    };
    let mut writer = stream;
    for j in 0..n {
        if let Some(due) = job.lane.due(j) {
            sleep_until(due);
        }
        let written = mono_ns();
        if j == 0 {
            out.first_write = written;
        }
        if let Err(e) = writer.write_all(&job.request(j, written)) {
            out.errors.push(format!("publish write #{j}: {e}"));
            break;
        }
        match reader.next_reply(job.deadline) {
            Ok(r) => out.note_reply(r.status, &r.body, written, mono_ns()),
            Err(e) => {
                out.errors.push(format!("publish reply #{j}: {e}"));
                break;
            }
        }
    }
    out.failed = n - out.ok;
    out
}
