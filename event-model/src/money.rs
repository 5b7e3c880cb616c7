//! Decimal money amounts.
//!
//! Prices and revenue are exact decimals end to end: clients may send a JSON number (`19.99`) or a
//! string (`"19.99"`); the queue carries them as strings; Parquet stores them as
//! `DECIMAL(38, 9)` (Arrow `Decimal128(38, 9)`), which BigQuery loads as `NUMERIC` and DuckDB as
//! `DECIMAL(38,9)`. A JSON number is read through its shortest decimal representation, so `19.99`
//! stays `19.99` and never becomes `19.989999999999998`.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Digits after the decimal point kept in storage (`DECIMAL(38, 9)`, BigQuery `NUMERIC`).
pub const MONEY_SCALE: u32 = 9;
/// Total digits of the stored decimal.
pub const MONEY_PRECISION: u8 = 38;

/// An exact, non-binary decimal amount with at most [`MONEY_SCALE`] fractional digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

/// Why a value is not a valid amount.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoneyError {
    /// Not a decimal number at all.
    #[error("not a decimal number: {0:?}")]
    NotANumber(String),
    /// More fractional digits than storage keeps; rounding money silently is never right.
    #[error("more than {MONEY_SCALE} digits after the decimal point: {0}")]
    TooPrecise(String),
}

impl Money {
    /// Parses a decimal string such as `"19.99"` or `"-3"`.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let decimal = Decimal::from_str(text.trim())
            .or_else(|_| Decimal::from_scientific(text.trim()))
            .map_err(|_| MoneyError::NotANumber(text.to_owned()))?;
        let decimal = decimal.normalize();
        if decimal.scale() > MONEY_SCALE {
            return Err(MoneyError::TooPrecise(text.to_owned()));
        }
        Ok(Self(decimal))
    }

    /// The amount as an integer count of 10⁻⁹ units, the representation of `Decimal128(38, 9)`.
    ///
    /// Computed in `i128`: a `Decimal`'s 96-bit mantissa cannot hold amounts from 7.9×10¹⁹ up
    /// with nine decimals, so `Decimal::rescale` keeps fewer there and its mantissa is then not
    /// a count of 10⁻⁹ units. Every amount (at most 2⁹⁶ × 10⁹ units) fits `DECIMAL(38, 9)`.
    pub fn to_scaled_i128(self) -> i128 {
        // Amounts are built with at most nine decimals; one from a `Decimal` with more is rounded
        // as `visit_f64` rounds.
        let amount = if self.0.scale() > MONEY_SCALE { self.0.round_dp(MONEY_SCALE) } else { self.0 };
        amount.mantissa() * 10i128.pow(MONEY_SCALE - amount.scale())
    }

    /// Builds an amount from an integer count of 10⁻⁹ units; `None` beyond what an amount can be
    /// (±7.9×10²⁸, a `Decimal`'s range), which `DECIMAL(38, 9)` can hold but no client can send.
    pub fn try_from_scaled_i128(units: i128) -> Option<Self> {
        let (mut units, mut scale) = (units, MONEY_SCALE);
        // Trailing zeros of the units are dropped until the mantissa fits 96 bits.
        while scale > 0 && units % 10 == 0 && Decimal::try_from_i128_with_scale(units, scale).is_err() {
            units /= 10;
            scale -= 1;
        }
        Decimal::try_from_i128_with_scale(units, scale).ok().map(|amount| Self(amount.normalize()))
    }

    /// Builds an amount from an integer count of 10⁻⁹ units, saturating at an amount's range
    /// (see [`Money::try_from_scaled_i128`]).
    pub fn from_scaled_i128(units: i128) -> Self {
        Self::try_from_scaled_i128(units).unwrap_or(Self(if units < 0 { Decimal::MIN } else { Decimal::MAX }))
    }

    /// True when the amount is below zero.
    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// The underlying decimal.
    pub fn as_decimal(self) -> Decimal {
        self.0
    }
}

impl From<Decimal> for Money {
    fn from(value: Decimal) -> Self {
        Self(value)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;

        impl Visitor<'_> for MoneyVisitor {
            type Value = Money;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal amount as a JSON number or string, e.g. 19.99 or \"19.99\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
                Money::parse(v).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                Ok(Money(Decimal::from(v)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                Ok(Money(Decimal::from(v)))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
                if !v.is_finite() {
                    return Err(E::custom("amount must be a finite number"));
                }
                // `{}` on f64 prints the shortest string that reads back as the same f64, which is
                // the decimal the client wrote for any amount with up to 15 significant digits.
                // Digits past the ninth decimal of a binary float are noise of its encoding:
                // round them half-even, as BigQuery casts FLOAT64 to NUMERIC.
                let text = format!("{v}");
                let decimal = Decimal::from_str(&text)
                    .or_else(|_| Decimal::from_scientific(&format!("{v:e}")))
                    .map_err(|_| E::custom(MoneyError::NotANumber(text.clone())))?;
                Ok(Money(decimal.round_dp(MONEY_SCALE).normalize()))
            }
        }

        deserializer.deserialize_any(MoneyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_keep_their_decimal_digits() {
        let money: Money = serde_json::from_str("19.99").unwrap();
        assert_eq!(money.to_string(), "19.99");
        assert_eq!(money.to_scaled_i128(), 19_990_000_000);
    }

    #[test]
    fn strings_and_integers_are_accepted() {
        let from_string: Money = serde_json::from_str("\"0.000000001\"").unwrap();
        assert_eq!(from_string.to_scaled_i128(), 1);
        let from_integer: Money = serde_json::from_str("42").unwrap();
        assert_eq!(from_integer.to_scaled_i128(), 42_000_000_000);
    }

    #[test]
    fn too_many_fractional_digits_in_a_string_are_an_error_not_a_rounding() {
        let error = serde_json::from_str::<Money>("\"1.0000000001\"").unwrap_err();
        assert!(error.to_string().contains("digits after the decimal point"), "{error}");
    }

    #[test]
    fn binary_float_noise_past_the_ninth_decimal_is_rounded() {
        let money: Money = serde_json::from_str("0.30000000000000004").unwrap();
        assert_eq!(money.to_string(), "0.3");
        let tiny: Money = serde_json::from_str("2.225073858507203e-309").unwrap();
        assert_eq!(tiny.to_scaled_i128(), 0);
    }

    #[test]
    fn non_numbers_are_rejected() {
        assert!(serde_json::from_str::<Money>("\"cheap\"").is_err());
        assert!(serde_json::from_str::<Money>("true").is_err());
    }

    #[test]
    fn scaled_round_trip_and_serialization_as_string() {
        let money = Money::from_scaled_i128(1_234_500_000);
        assert_eq!(serde_json::to_string(&money).unwrap(), "\"1.2345\"");
        assert!(!money.is_negative());
        assert!(Money::parse("-0.5").unwrap().is_negative());
        assert!(!Money::parse("-0").unwrap().is_negative());
    }

    /// Found by `proptests::scaled_units_are_exact`: from 7.9×10¹⁹ up, `Decimal::rescale(9)`
    /// kept fewer decimals and the stored units were 10 to 10⁹ times too small.
    #[test]
    fn amounts_from_eight_times_ten_to_the_nineteen_keep_their_units() {
        let money = Money::parse("79228162514264337593").unwrap();
        assert_eq!(money.to_scaled_i128(), 79_228_162_514_264_337_593_000_000_000);
        let largest = Money::parse("79228162514264337593543950335").unwrap();
        assert_eq!(largest.to_scaled_i128(), 79_228_162_514_264_337_593_543_950_335_000_000_000);
        assert_eq!(Money::from_scaled_i128(largest.to_scaled_i128()), largest);
        assert_eq!(Money::try_from_scaled_i128(i128::MAX), None);
    }

    /// Properties over generated amounts (`crate::strategies::money`).
    mod proptests {
        use proptest::prelude::*;

        use super::*;
        use crate::strategies;

        /// 10⁻⁹ units of a decimal text, read digit by digit: the reference for the scaled form.
        fn units_of(text: &str) -> i128 {
            let (negative, digits) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text),
            };
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
            let fraction = format!("{fraction:0<9}");
            let units: i128 = format!("{whole}{fraction}").parse().unwrap();
            if negative { -units } else { units }
        }

        proptest! {
            #![proptest_config(strategies::config(1024))]

            #[test]
            fn scaled_units_are_exact(money in strategies::money()) {
                prop_assert_eq!(money.to_scaled_i128(), units_of(&money.to_string()));
                prop_assert_eq!(Money::from_scaled_i128(money.to_scaled_i128()), money);
            }

            #[test]
            fn text_and_json_round_trip(money in strategies::money()) {
                prop_assert_eq!(Money::parse(&money.to_string()), Ok(money));
                let json = serde_json::to_string(&money).unwrap();
                prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
            }

            #[test]
            fn json_numbers_of_up_to_fifteen_digits_are_exact((json, money) in strategies::money_json()) {
                prop_assert_eq!(serde_json::from_value::<Money>(json).unwrap(), money);
            }

            #[test]
            fn any_text_parses_or_is_refused_without_panicking(text in strategies::text()) {
                if let Ok(money) = Money::parse(&text) {
                    prop_assert_eq!(Money::parse(&money.to_string()), Ok(money));
                }
            }
        }
    }
}
