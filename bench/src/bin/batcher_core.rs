//! The batcher's core on one thread, for `scripts/bench-batcher.sh`: queue messages (stored
//! events as JSON lines) → rows decoded straight into Arrow columns (`StoredRow`, as the batcher
//! decodes spool records and Pub/Sub messages) → hourly groups, deduplicated → zstd Parquet files.
//!
//! `batcher-core generate N FILE` writes N realistic events as JSON lines;
//! `batcher-core convert FILE OUT_DIR [ZSTD_LEVEL]` converts them with the batcher's default
//! settings (or that zstd level) and prints `events seconds`. Like the batcher, it uses the
//! system allocator.

use std::io::{BufWriter, Read, Write};
use std::time::Instant;

use batcher::parquet_io::{HourlyParquetWriter, ParquetSettings};
use chrono::{Duration, TimeZone, Utc};
use event_model::columns::StoredRow;
use event_model::{Event, EventType, Money, Platform};

fn generate(count: usize, path: &str) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let start = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).single().unwrap_or_default();
    let types = [
        EventType::PageView,
        EventType::ProductView,
        EventType::ProductView,
        EventType::AddToCart,
        EventType::Purchase,
    ];
    let categories = ["electronics.smartphone", "appliances.kitchen.kettle", "apparel.shoes", "computers.notebook"];
    let mut state: u64 = 42;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..count {
        let time = start + Duration::milliseconds((i as i64) * 97);
        let event_type = types[(next() % types.len() as u64) as usize];
        let mut event = Event::new(
            uuid::Uuid::from_u128(next() as u128 | ((i as u128) << 64)).to_string(),
            event_type,
            time,
            time + Duration::milliseconds(350),
            "storefront",
        );
        event.client_event_time = Some(time);
        event.sent_at = Some(time + Duration::milliseconds(200));
        event.anonymous_id = Some(format!("anon-{}", next() % 50_000));
        event.session_id = Some(format!("s-{}", next() % 120_000));
        event.page_url = Some(format!("https://shop.example/p/{}", next() % 20_000));
        event.page_path = Some(format!("/p/{}", next() % 20_000));
        event.page_title = Some("Product page".into());
        if event_type != EventType::PageView {
            event.product_id = Some((1_000_000 + next() % 20_000).to_string());
            event.category_code = Some(categories[(next() % 4) as usize].into());
            event.brand = Some(["acme", "globex", "initech", "umbrella"][(next() % 4) as usize].into());
            event.price = Some(Money::from_scaled_i128(i128::from(next() % 100_000) * 10_000_000));
            event.currency = Some("EUR".into());
            event.quantity = Some(1);
        }
        if event_type == EventType::Purchase {
            event.order_id = Some(format!("o-{i}"));
            event.revenue = event.price;
            event.order_currency = Some("EUR".into());
        }
        event.platform = Some(Platform::Web);
        event.locale = Some("en-GB".into());
        event.ip_truncated = Some("203.0.113.0".into());
        event.user_agent = Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36".into());
        event.ua_browser = Some("Chrome".into());
        event.ua_os = Some("Mac OSX".into());
        event.ua_device_class = Some("desktop".into());
        out.write_all(&event.to_json_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn convert(input: &str, output: &str, settings: ParquetSettings) -> Result<(usize, f64), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut input = std::fs::File::open(input)?;
    let mut writer = HourlyParquetWriter::new(settings);
    let mut count = 0;
    // Messages are split out of 8 MiB blocks in place; a line cut by a block's end moves to the
    // front of the next block.
    let mut block = vec![0u8; 8 << 20];
    let mut filled = 0;
    loop {
        let read = input.read(&mut block[filled..])?;
        filled += read;
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &block[..filled]) {
            if end > start {
                StoredRow::parse_with(&block[start..end], |row| writer.push_row(row))??;
                count += 1;
            }
            start = end + 1;
        }
        if read == 0 {
            if start < filled {
                StoredRow::parse_with(&block[start..filled], |row| writer.push_row(row))??;
                count += 1;
            }
            break;
        }
        block.copy_within(start..filled, 0);
        filled -= start;
        if filled == block.len() {
            block.resize(block.len() * 2, 0);
        }
    }
    let (files, _) = writer.finish()?;
    std::fs::create_dir_all(output)?;
    for file in files {
        std::fs::write(format!("{output}/{}.parquet", file.hour.format("%Y%m%d%H")), file.data)?;
    }
    Ok((count, started.elapsed().as_secs_f64()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("generate") if args.len() == 4 => generate(args[2].parse()?, &args[3])?,
        Some("convert") if (4..=5).contains(&args.len()) => {
            let mut settings = ParquetSettings::default();
            if let Some(level) = args.get(4) {
                settings.zstd_level = level.parse()?;
            }
            let (events, seconds) = convert(&args[2], &args[3], settings)?;
            println!("{events} {seconds:.3}");
        }
        _ => return Err("usage: batcher-core generate N FILE | convert FILE OUT_DIR [ZSTD_LEVEL]".into()),
    }
    Ok(())
}
