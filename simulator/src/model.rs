//! The simulated shop and its shoppers: catalogue, traffic rhythm, devices, channels, and the
//! session behaviour that produces events. Everything draws from one seeded RNG, so a seed
//! always produces the same traffic.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

/// One product of the catalogue.
#[derive(Clone, Debug)]
pub struct Product {
    /// Catalogue id.
    pub id: String,
    /// Category id.
    pub category_id: String,
    /// Dotted category path.
    pub category_code: String,
    /// Brand.
    pub brand: String,
    /// Price in cents.
    pub price_cents: u64,
}

const CATEGORIES: &[(&str, &[&str], u64)] = &[
    ("electronics.smartphone", &["samsung", "apple", "xiaomi", "huawei", "oppo"], 35_000),
    ("electronics.audio.headphone", &["sony", "apple", "jbl", "sennheiser"], 9_000),
    ("electronics.video.tv", &["samsung", "lg", "sony", "philips"], 55_000),
    ("computers.notebook", &["lenovo", "hp", "asus", "acer", "apple"], 85_000),
    ("computers.peripherals.mouse", &["logitech", "razer", "hp"], 3_000),
    ("appliances.kitchen.kettle", &["bosch", "tefal", "philips", "redmond"], 4_000),
    ("appliances.kitchen.washer", &["bosch", "lg", "samsung", "indesit"], 42_000),
    ("apparel.shoes.sneakers", &["nike", "adidas", "puma", "asics"], 8_500),
    ("apparel.jacket", &["columbia", "the-north-face", "zara"], 12_000),
    ("furniture.living_room.sofa", &["ikea", "hoff", "askona"], 60_000),
    ("kids.toys", &["lego", "hasbro", "mattel"], 3_500),
    ("sport.bicycle", &["stels", "trek", "giant", "merida"], 45_000),
];

/// The catalogue with Zipf-like popularity: the product of rank r is chosen with weight
/// 1 / r^1.1, so a few products get most of the views.
pub struct Catalogue {
    /// Products, most popular first.
    pub products: Vec<Product>,
    cumulative: Vec<f64>,
}

impl Catalogue {
    /// A catalogue of `size` products.
    pub fn new(rng: &mut StdRng, size: usize) -> Self {
        let mut products = Vec::with_capacity(size);
        for i in 0..size {
            let (code, brands, base) = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
            let brand = brands[rng.random_range(0..brands.len())];
            // Prices spread around the category's typical price, in whole cents ending in 9.
            let factor: f64 = rng.random_range(0.4..2.2);
            let price_cents = ((base as f64 * factor) as u64 / 100) * 100 + 99;
            products.push(Product {
                id: (1_000_000 + i * 7 + rng.random_range(0..7)).to_string(),
                category_id: format!("20530{:05}", CATEGORIES.iter().position(|c| c.0 == code).unwrap_or(0) * 97),
                category_code: code.to_owned(),
                brand: brand.to_owned(),
                price_cents,
            });
        }
        let mut cumulative = Vec::with_capacity(size);
        let mut total = 0.0;
        for rank in 1..=size {
            total += 1.0 / (rank as f64).powf(1.1);
            cumulative.push(total);
        }
        Self { products, cumulative }
    }

    /// A product by popularity.
    pub fn pick(&self, rng: &mut StdRng) -> &Product {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let target = rng.random_range(0.0..total);
        let index = self.cumulative.partition_point(|c| *c < target).min(self.products.len() - 1);
        &self.products[index]
    }

    /// A product of the same category as `product`, by popularity (browsing within a category).
    pub fn pick_similar(&self, rng: &mut StdRng, product: &Product) -> &Product {
        for _ in 0..20 {
            let candidate = self.pick(rng);
            if candidate.category_code == product.category_code && candidate.id != product.id {
                return candidate;
            }
        }
        self.pick(rng)
    }
}

/// Relative traffic of an hour of the day (UTC): quiet nights, a lunch bump, an evening peak
/// at 20:00.
pub fn hour_weight(hour: u32) -> f64 {
    const WEIGHTS: [f64; 24] = [
        0.25, 0.15, 0.1, 0.08, 0.08, 0.12, 0.25, 0.45, 0.65, 0.8, 0.9, 1.0, 1.15, 1.05, 0.95, 0.95, 1.0, 1.1, 1.3, 1.6,
        1.9, 1.7, 1.1, 0.55,
    ];
    WEIGHTS[hour as usize % 24]
}

/// Relative traffic of a weekday: weekends busier, Tuesday quietest.
pub fn day_weight(day: Weekday) -> f64 {
    match day {
        Weekday::Mon => 0.95,
        Weekday::Tue => 0.85,
        Weekday::Wed => 0.9,
        Weekday::Thu => 0.95,
        Weekday::Fri => 1.05,
        Weekday::Sat => 1.3,
        Weekday::Sun => 1.25,
    }
}

/// A device a shopper uses.
#[derive(Clone, Debug)]
pub struct Device {
    /// web, ios or android.
    pub platform: &'static str,
    /// desktop, mobile or tablet.
    pub class: &'static str,
    /// Its user agent.
    pub user_agent: &'static str,
    /// Screen size.
    pub screen: (u32, u32),
}

// The device mix of Dynamic Yield's XP² benchmark (12-month global average): 65% of sessions on
// phones, 32% on desktops, 3% on tablets.
const DEVICES: &[(f64, Device)] = &[
    (
        0.24,
        Device {
            class: "desktop",
            platform: "web",
            user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            screen: (1920, 1080),
        },
    ),
    (
        0.08,
        Device {
            class: "desktop",
            platform: "web",
            user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
            screen: (1440, 900),
        },
    ),
    (
        0.30,
        Device {
            class: "mobile",
            platform: "web",
            user_agent: "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
            screen: (412, 915),
        },
    ),
    (
        0.19,
        Device {
            class: "mobile",
            platform: "web",
            user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            screen: (390, 844),
        },
    ),
    (
        0.03,
        Device {
            class: "tablet",
            platform: "web",
            user_agent: "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            screen: (820, 1180),
        },
    ),
    (
        0.09,
        Device {
            class: "mobile",
            platform: "ios",
            user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
            screen: (393, 852),
        },
    ),
    (
        0.07,
        Device {
            class: "mobile",
            platform: "android",
            user_agent: "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
            screen: (412, 915),
        },
    ),
];

const BOT_AGENTS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
    "python-requests/2.32.3",
];

/// A device by share of traffic.
pub fn pick_device(rng: &mut StdRng) -> Device {
    let mut target = rng.random_range(0.0..1.0);
    for (share, device) in DEVICES {
        if target < *share {
            return device.clone();
        }
        target -= share;
    }
    DEVICES[0].1.clone()
}

/// A bot's user agent.
pub fn bot_agent(rng: &mut StdRng) -> &'static str {
    BOT_AGENTS[rng.random_range(0..BOT_AGENTS.len())]
}

/// How a session arrived: its campaign fields and referrer.
pub fn pick_channel(rng: &mut StdRng) -> (Option<Value>, Option<&'static str>) {
    match rng.random_range(0..100) {
        0..=11 => (Some(json!({"source": "newsletter", "medium": "email", "name": "weekly-deals"})), None),
        12..=21 => (
            Some(json!({"source": "google", "medium": "cpc", "name": "brand-search", "term": "shop"})),
            Some("https://www.google.com/"),
        ),
        22..=27 => (
            Some(json!({"source": "facebook", "medium": "social", "name": "black-friday"})),
            Some("https://www.facebook.com/"),
        ),
        28..=55 => (None, Some("https://www.google.com/")),
        56..=60 => (None, Some("https://www.bing.com/")),
        61..=64 => (None, Some("https://www.reddit.com/r/deals/")),
        _ => (None, None),
    }
}

/// Share of sessions that leave after their landing page, before the device and channel
/// adjustments: phones bounce more than desktops, email and referral visits less than social.
const BASE_BOUNCE: f64 = 0.36;

/// The chance that a session leaves after its landing page.
pub fn bounce_probability(device: &Device, medium: Option<&str>) -> f64 {
    let by_device = match device.class {
        "desktop" => 0.8,
        "tablet" => 0.95,
        _ => 1.1,
    };
    let by_channel = match medium {
        Some("email") => 0.75,
        Some("social") => 1.3,
        _ => 1.0,
    };
    (BASE_BOUNCE * by_device * by_channel).clamp(0.0, 0.95)
}

/// What a session that stays is for.
#[derive(Clone, Copy, Debug)]
pub struct Intent {
    /// Chance of viewing one more page after each page.
    pub keep_going: f64,
    /// Share of its pages that are product pages (the rest: listings and the home page).
    pub product_page_share: f64,
    /// Chance of adding a viewed product to the cart.
    pub add_to_cart: f64,
    /// Chance of going to checkout with a cart.
    pub checkout: f64,
}

/// The chance that a checkout ends in an order.
pub const PURCHASE_AFTER_CHECKOUT: f64 = 0.62;

/// Of the sessions that stay, 63% browse (listings, a few products), 25% compare products, and 12%
/// came to buy.
pub fn pick_intent(rng: &mut StdRng) -> Intent {
    match rng.random_range(0..100) {
        0..=62 => Intent { keep_going: 0.55, product_page_share: 0.45, add_to_cart: 0.005, checkout: 0.2 },
        63..=87 => Intent { keep_going: 0.72, product_page_share: 0.75, add_to_cart: 0.07, checkout: 0.35 },
        _ => Intent { keep_going: 0.75, product_page_share: 0.8, add_to_cart: 0.35, checkout: 0.65 },
    }
}

/// Seconds between two events of a session: mostly short, sometimes long reads.
pub fn think_time(rng: &mut StdRng) -> Duration {
    let seconds: f64 = -40.0 * (1.0 - rng.random_range(0.0..1.0f64)).ln();
    Duration::milliseconds((seconds.clamp(2.0, 900.0) * 1000.0) as i64)
}

/// The start of a session within `hour`, at a random second.
pub fn start_in_hour(rng: &mut StdRng, hour: DateTime<Utc>) -> DateTime<Utc> {
    hour + Duration::seconds(rng.random_range(0..3600))
}

/// Expected sessions in `hour` for a shop doing `per_day` sessions on an average day.
pub fn sessions_in_hour(hour: DateTime<Utc>, per_day: f64) -> f64 {
    let mean_hour_weight: f64 = (0..24).map(hour_weight).sum::<f64>() / 24.0;
    per_day / 24.0 * hour_weight(hour.hour()) / mean_hour_weight * day_weight(hour.weekday())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn popularity_is_skewed_towards_the_top_products() {
        let mut rng = StdRng::seed_from_u64(1);
        let catalogue = Catalogue::new(&mut rng, 500);
        let mut top10 = 0;
        for _ in 0..10_000 {
            let product = catalogue.pick(&mut rng);
            if catalogue.products[..10].iter().any(|p| p.id == product.id) {
                top10 += 1;
            }
        }
        assert!(top10 > 3_000, "the top 2% of products should get a large share of views: {top10}");
    }

    #[test]
    fn the_evening_is_the_peak() {
        let peak = (0..24).max_by(|a, b| hour_weight(*a).total_cmp(&hour_weight(*b))).unwrap();
        assert_eq!(peak, 20);
    }
}
