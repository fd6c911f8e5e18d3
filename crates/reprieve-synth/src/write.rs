//! Writers of the inventory and events files (CSV by hand, Parquet through polars in row-group chunks).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use polars::prelude::*;

use crate::SynthError;
use crate::plan::Plan;

/// Rows per Parquet row group / DataFrame chunk.
const CHUNK_ROWS: usize = 1 << 20;

pub(crate) const EVENTS_HEADER: &str = "ts,key,size,tenant,op";
pub(crate) const INVENTORY_HEADER: &str =
    "tenant,key,size,created,modified,storage_class,owner,legal_hold,retain_until,live_references,content_type,cohort";

fn create(path: &Path) -> Result<BufWriter<File>, SynthError> {
    File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(|e| SynthError::io(path, e))
}

/// Formats integers without going through `core::fmt`.
#[derive(Debug, Default)]
struct Int {
    buf: [u8; 20],
}

impl Int {
    fn u64(&mut self, mut v: u64) -> &[u8] {
        let mut i = self.buf.len();
        loop {
            i -= 1;
            self.buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        &self.buf[i..]
    }
}

fn put_i64(w: &mut impl Write, int: &mut Int, v: i64) -> std::io::Result<()> {
    if v < 0 {
        w.write_all(b"-")?;
    }
    w.write_all(int.u64(v.unsigned_abs()))
}

pub(crate) fn write_inventory_csv(plan: &Plan, path: &Path) -> Result<(), SynthError> {
    let mut w = create(path)?;
    let mut int = Int::default();
    let io = |e| SynthError::io(path, e);
    (|| -> std::io::Result<()> {
        w.write_all(INVENTORY_HEADER.as_bytes())?;
        w.write_all(b"\n")?;
        for (i, o) in plan.objects.iter().enumerate() {
            w.write_all(plan.tenants[o.tenant as usize].as_bytes())?;
            w.write_all(b",")?;
            w.write_all(plan.key(i).as_bytes())?;
            w.write_all(b",")?;
            w.write_all(int.u64(o.size))?;
            w.write_all(b",")?;
            put_i64(&mut w, &mut int, o.created)?;
            w.write_all(b",")?;
            put_i64(&mut w, &mut int, o.modified)?;
            w.write_all(b",")?;
            w.write_all(o.storage_class.s3_name().as_bytes())?;
            w.write_all(b",")?;
            w.write_all(plan.owner(i).unwrap_or("").as_bytes())?;
            w.write_all(if o.legal_hold { b",true," } else { b",false," })?;
            if let Some(r) = o.retain_until {
                put_i64(&mut w, &mut int, r)?;
            }
            w.write_all(b",")?;
            w.write_all(int.u64(u64::from(o.live_references)))?;
            w.write_all(b",")?;
            w.write_all(crate::names::EXTS[usize::from(o.ext)].content_type.as_bytes())?;
            w.write_all(b",")?;
            w.write_all(o.cohort.as_str().as_bytes())?;
            w.write_all(b"\n")?;
        }
        w.flush()
    })()
    .map_err(io)
}

pub(crate) fn write_events_csv(plan: &Plan, events: &[u64], path: &Path) -> Result<(), SynthError> {
    let mut w = create(path)?;
    let mut int = Int::default();
    (|| -> std::io::Result<()> {
        w.write_all(EVENTS_HEADER.as_bytes())?;
        w.write_all(b"\n")?;
        for &e in events {
            let (ts, i) = decode(plan, e);
            let o = &plan.objects[i];
            put_i64(&mut w, &mut int, ts)?;
            w.write_all(b",")?;
            w.write_all(plan.key(i).as_bytes())?;
            w.write_all(b",")?;
            w.write_all(int.u64(o.size))?;
            w.write_all(b",")?;
            w.write_all(plan.tenants[o.tenant as usize].as_bytes())?;
            w.write_all(b",GET\n")?;
        }
        w.flush()
    })()
    .map_err(|e| SynthError::io(path, e))
}

fn decode(plan: &Plan, e: u64) -> (i64, usize) {
    (plan.start + (e >> 32) as i64, (e & 0xFFFF_FFFF) as usize)
}

fn parquet_writer(
    path: &Path,
    schema: &Schema,
) -> Result<polars::io::parquet::write::BatchedWriter<BufWriter<File>>, SynthError> {
    let file = create(path)?;
    ParquetWriter::new(file)
        .with_row_group_size(Some(CHUNK_ROWS))
        .batched(schema)
        .map_err(|e| SynthError::parquet(path, e))
}

pub(crate) fn write_events_parquet(plan: &Plan, events: &[u64], path: &Path) -> Result<(), SynthError> {
    let schema = Schema::from_iter([
        Field::new("ts".into(), DataType::Int64),
        Field::new("key".into(), DataType::String),
        Field::new("size".into(), DataType::UInt64),
        Field::new("tenant".into(), DataType::String),
        Field::new("op".into(), DataType::String),
    ]);
    let mut writer = parquet_writer(path, &schema)?;
    let pq = |e| SynthError::parquet(path, e);
    // An empty log still gets a (schema-only) file.
    let chunks: Vec<&[u64]> = if events.is_empty() {
        vec![&[]]
    } else {
        events.chunks(CHUNK_ROWS).collect()
    };
    for chunk in chunks {
        let decoded = chunk.iter().map(|&e| decode(plan, e));
        let ts: Vec<i64> = decoded.clone().map(|(t, _)| t).collect();
        let key = StringChunked::from_iter_values("key".into(), decoded.clone().map(|(_, i)| plan.key(i)));
        let size: Vec<u64> = decoded.clone().map(|(_, i)| plan.objects[i].size).collect();
        let tenant = StringChunked::from_iter_values(
            "tenant".into(),
            decoded.map(|(_, i)| plan.tenants[plan.objects[i].tenant as usize].as_str()),
        );
        let op = StringChunked::from_iter_values("op".into(), std::iter::repeat_n("GET", chunk.len()));
        let df = DataFrame::new(
            chunk.len(),
            vec![
                Column::new("ts".into(), ts),
                key.into_column(),
                Column::new("size".into(), size),
                tenant.into_column(),
                op.into_column(),
            ],
        )
        .map_err(pq)?;
        writer.write_batch(&df).map_err(pq)?;
    }
    writer.finish().map_err(pq)?;
    Ok(())
}

pub(crate) fn write_inventory_parquet(plan: &Plan, path: &Path) -> Result<(), SynthError> {
    let schema = Schema::from_iter([
        Field::new("tenant".into(), DataType::String),
        Field::new("key".into(), DataType::String),
        Field::new("size".into(), DataType::UInt64),
        Field::new("created".into(), DataType::Int64),
        Field::new("modified".into(), DataType::Int64),
        Field::new("storage_class".into(), DataType::String),
        Field::new("owner".into(), DataType::String),
        Field::new("legal_hold".into(), DataType::Boolean),
        Field::new("retain_until".into(), DataType::Int64),
        Field::new("live_references".into(), DataType::UInt32),
        Field::new("content_type".into(), DataType::String),
        Field::new("cohort".into(), DataType::String),
    ]);
    let mut writer = parquet_writer(path, &schema)?;
    let pq = |e| SynthError::parquet(path, e);
    let n = plan.objects.len();
    for from in (0..n).step_by(CHUNK_ROWS) {
        let to = (from + CHUNK_ROWS).min(n);
        let rows = from..to;
        let objs = &plan.objects[rows.clone()];
        let strs = |name: &str, f: &dyn for<'a> Fn(&'a Plan, usize) -> &'a str| {
            StringChunked::from_iter_values(name.into(), rows.clone().map(|i| f(plan, i))).into_column()
        };
        let columns = vec![
            strs("tenant", &|p, i| p.tenants[p.objects[i].tenant as usize].as_str()),
            strs("key", &|p, i| p.key(i)),
            Column::new("size".into(), objs.iter().map(|o| o.size).collect::<Vec<u64>>()),
            Column::new("created".into(), objs.iter().map(|o| o.created).collect::<Vec<i64>>()),
            Column::new("modified".into(), objs.iter().map(|o| o.modified).collect::<Vec<i64>>()),
            strs("storage_class", &|p, i| p.objects[i].storage_class.s3_name()),
            StringChunked::from_iter_options("owner".into(), rows.clone().map(|i| plan.owner(i))).into_column(),
            Column::new(
                "legal_hold".into(),
                objs.iter().map(|o| o.legal_hold).collect::<Vec<bool>>(),
            ),
            Int64Chunked::from_iter_options("retain_until".into(), objs.iter().map(|o| o.retain_until)).into_column(),
            Column::new(
                "live_references".into(),
                objs.iter().map(|o| u32::from(o.live_references)).collect::<Vec<u32>>(),
            ),
            strs("content_type", &|p, i| {
                crate::names::EXTS[usize::from(p.objects[i].ext)].content_type
            }),
            strs("cohort", &|p, i| p.objects[i].cohort.as_str()),
        ];
        let df = DataFrame::new(to - from, columns).map_err(pq)?;
        writer.write_batch(&df).map_err(pq)?;
    }
    writer.finish().map_err(pq)?;
    Ok(())
}
