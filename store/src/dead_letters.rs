//! The `dead_letters` table: what the position stream set aside, written in
//! batches by the writer thread and read back newest first (for tests, the
//! operator and a later API).

use rusqlite::{Connection, params};

use super::rows::{parse_ts, ts};
use crate::error::Result;
use crate::model::{NewDeadLetter, StoredDeadLetter, TenantId};

/// Inserts every letter (the caller's savepoint makes the batch atomic).
pub(crate) fn add_dead_letters(c: &Connection, letters: &[NewDeadLetter]) -> Result<()> {
    let mut insert = c.prepare_cached(
        r#"INSERT INTO dead_letters (tenant_id, origin, topic, partition, "offset", size_bytes,
                                     reason, detail, payload, key, received_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"#,
    )?;
    for l in letters {
        insert.execute(params![
            l.tenant_id.as_ref().map(TenantId::as_str),
            l.origin,
            l.topic,
            l.partition,
            l.offset,
            // SQLite integers are i64; no message comes near that size.
            i64::try_from(l.size_bytes).unwrap_or(i64::MAX),
            l.reason,
            l.detail,
            l.payload,
            l.key,
            ts(l.received_at),
        ])?;
    }
    Ok(())
}

/// The `limit` most recent dead letters, newest first.
pub(crate) fn recent_dead_letters(c: &Connection, limit: usize) -> Result<Vec<StoredDeadLetter>> {
    let mut select = c.prepare_cached(
        r#"SELECT id, tenant_id, origin, topic, partition, "offset", size_bytes, reason, detail,
                  payload, key, received_at
           FROM dead_letters ORDER BY id DESC LIMIT ?1"#,
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = select.query_map([limit], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<i32>>(4)?,
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, String>(8)?,
            r.get::<_, Vec<u8>>(9)?,
            r.get::<_, Option<Vec<u8>>>(10)?,
            r.get::<_, String>(11)?,
        ))
    })?;
    let mut letters = Vec::new();
    for row in rows {
        let (id, tenant, origin, topic, partition, offset, size, reason, detail, payload, key, at) =
            row?;
        letters.push(StoredDeadLetter {
            id,
            letter: NewDeadLetter {
                tenant_id: tenant.map(TenantId),
                origin,
                topic,
                partition,
                offset,
                size_bytes: u64::try_from(size).unwrap_or(0),
                reason,
                detail,
                payload,
                key,
                received_at: parse_ts(&at)?,
            },
        });
    }
    Ok(letters)
}
