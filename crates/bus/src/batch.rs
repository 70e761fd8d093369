//! How several jobs share one AMQP message. Publishes that wait for the broker at the same
//! time are sent as one message (group commit), because on a quorum queue the broker's cost
//! is per message: one confirm then makes many jobs durable at once. A message with the
//! `x-sb-batch` header holds its jobs back to back, each after its length as a big-endian
//! `u32`; the consumer splits it and handles every job as a delivery of its own.

use lapin::types::{AMQPValue, FieldTable};

pub(crate) const HEADER: &str = "x-sb-batch";
pub(crate) const CONTENT_TYPE: &str = "application/vnd.switchboard.batch";

/// The most jobs one message carries. One worker takes a message whole, so a message
/// holds no more than a worker runs at once by default (`amqp.prefetch`).
pub(crate) const MAX_JOBS: usize = 32;
/// The most bytes one message carries; a single larger job still goes, alone.
pub(crate) const MAX_BYTES: usize = 512 * 1024;

pub(crate) fn encode<'a>(jobs: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for job in jobs {
        // Jobs are far below 4 GiB: the gateway and the listener cap their inputs.
        out.extend_from_slice(&u32::try_from(job.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(job);
    }
    out
}

pub(crate) fn headers(jobs: usize) -> FieldTable {
    let mut h = FieldTable::default();
    h.insert(
        HEADER.into(),
        AMQPValue::LongUInt(u32::try_from(jobs).unwrap_or(u32::MAX)),
    );
    h
}

/// The number of jobs a message says it holds; `None` for a message with one job.
pub(crate) fn count(headers: Option<&FieldTable>) -> Option<u32> {
    match headers.and_then(|h| h.inner().get(HEADER)) {
        Some(AMQPValue::LongUInt(n)) => Some(*n),
        Some(AMQPValue::LongInt(n)) => u32::try_from(*n).ok(),
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).ok(),
        _ => None,
    }
}

/// Splits a batch body into its jobs, or says why it is not one.
pub(crate) fn decode(body: &[u8], expected: u32) -> Result<Vec<&[u8]>, String> {
    let mut jobs = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or("a batch ends inside a length")?;
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err("a batch ends inside a job".into());
        }
        let (job, tail) = tail.split_at(len);
        jobs.push(job);
        rest = tail;
    }
    if jobs.len() != expected as usize {
        return Err(format!(
            "a batch announced {expected} jobs and holds {}",
            jobs.len()
        ));
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn jobs_come_back_as_they_went_in() {
        let jobs: [&[u8]; 3] = [b"{\"a\":1}", b"", b"\x00\x01\xff"];
        let body = encode(jobs.iter().copied());
        assert_eq!(decode(&body, 3).unwrap(), jobs);
        assert_eq!(count(Some(&headers(3))), Some(3));
        assert_eq!(count(None), None);
    }

    #[test]
    fn a_damaged_batch_is_refused_with_the_reason() {
        let body = encode([b"abc".as_slice(), b"defg"].into_iter());
        assert_eq!(
            decode(&body[..body.len() - 1], 2).unwrap_err(),
            "a batch ends inside a job"
        );
        assert_eq!(
            decode(&body[..2], 2).unwrap_err(),
            "a batch ends inside a length"
        );
        assert_eq!(
            decode(&body, 3).unwrap_err(),
            "a batch announced 3 jobs and holds 2"
        );
    }
}
