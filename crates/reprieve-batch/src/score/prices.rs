//! Storage prices used for the cost of unused bytes (metric M3).

use reprieve_core::StorageClass;
use serde::{Deserialize, Serialize};

/// Bytes in one billed "GB": AWS bills storage in binary gigabytes (GiB), so does the report.
pub const BYTES_PER_GB: f64 = 1_073_741_824.0;

/// USD per GB-month for each storage class. The defaults are the Amazon S3 list prices in us-east-1 (first 50 TB
/// tier, 2025): STANDARD 0.023, INTELLIGENT_TIERING 0.023 (frequent-access tier), STANDARD_IA 0.0125,
/// ONEZONE_IA 0.01, GLACIER_IR 0.004, GLACIER (Flexible Retrieval) 0.0036, DEEP_ARCHIVE 0.00099. Objects without a
/// storage class are billed as STANDARD (S3's default); unknown classes (`other`) as STANDARD too.
///
/// The CLI can override it from a TOML file with these keys (all optional, missing keys keep the default):
///
/// ```toml
/// standard = 0.023
/// intelligent_tiering = 0.023
/// standard_ia = 0.0125
/// onezone_ia = 0.01
/// glacier_ir = 0.004
/// glacier = 0.0036
/// deep_archive = 0.00099
/// unspecified = 0.023
/// other = 0.023
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriceTable {
    pub standard: f64,
    pub intelligent_tiering: f64,
    pub standard_ia: f64,
    pub onezone_ia: f64,
    pub glacier_ir: f64,
    pub glacier: f64,
    pub deep_archive: f64,
    /// Objects whose inventory gives no storage class.
    pub unspecified: f64,
    /// Storage classes Reprieve does not know.
    pub other: f64,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            standard: 0.023,
            intelligent_tiering: 0.023,
            standard_ia: 0.0125,
            onezone_ia: 0.01,
            glacier_ir: 0.004,
            glacier: 0.0036,
            deep_archive: 0.00099,
            unspecified: 0.023,
            other: 0.023,
        }
    }
}

impl PriceTable {
    /// Every storage class in report order, with the label the report uses.
    pub const CLASSES: [StorageClass; 9] = [
        StorageClass::Standard,
        StorageClass::IntelligentTiering,
        StorageClass::StandardIa,
        StorageClass::OnezoneIa,
        StorageClass::GlacierIr,
        StorageClass::Glacier,
        StorageClass::DeepArchive,
        StorageClass::Unspecified,
        StorageClass::Other,
    ];

    /// USD per GB-month of `class`.
    pub fn usd_per_gb_month(&self, class: StorageClass) -> f64 {
        match class {
            StorageClass::Standard => self.standard,
            StorageClass::IntelligentTiering => self.intelligent_tiering,
            StorageClass::StandardIa => self.standard_ia,
            StorageClass::OnezoneIa => self.onezone_ia,
            StorageClass::GlacierIr => self.glacier_ir,
            StorageClass::Glacier => self.glacier,
            StorageClass::DeepArchive => self.deep_archive,
            StorageClass::Unspecified => self.unspecified,
            StorageClass::Other => self.other,
        }
    }

    /// Monthly cost in USD of keeping `bytes` in `class`.
    pub fn monthly_cost(&self, class: StorageClass, bytes: u64) -> f64 {
        bytes as f64 / BYTES_PER_GB * self.usd_per_gb_month(class)
    }

    /// Parses a TOML price file (see the type's documentation); unknown keys and negative or non-finite prices
    /// are refused.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let table: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        for class in Self::CLASSES {
            let p = table.usd_per_gb_month(class);
            if !(p.is_finite() && p >= 0.0) {
                return Err(format!("{}: price must be a finite number >= 0, got {p}", label(class)));
            }
        }
        Ok(table)
    }
}

/// The report's (and the TOML file's) label of a storage class: `standard`, `standard_ia`, ..., `unspecified`.
pub fn label(class: StorageClass) -> &'static str {
    match class {
        StorageClass::Standard => "standard",
        StorageClass::IntelligentTiering => "intelligent_tiering",
        StorageClass::StandardIa => "standard_ia",
        StorageClass::OnezoneIa => "onezone_ia",
        StorageClass::GlacierIr => "glacier_ir",
        StorageClass::Glacier => "glacier",
        StorageClass::DeepArchive => "deep_archive",
        StorageClass::Unspecified => "unspecified",
        StorageClass::Other => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_some_prices() {
        let t = PriceTable::from_toml("standard = 0.05\nglacier = 0.001\n").expect("parses");
        assert_eq!(t.standard, 0.05);
        assert_eq!(t.glacier, 0.001);
        assert_eq!(t.standard_ia, PriceTable::default().standard_ia);
        assert!(PriceTable::from_toml("standerd = 1.0").is_err());
        assert!(PriceTable::from_toml("standard = -1.0").is_err());
        let gb = BYTES_PER_GB as u64;
        assert!((t.monthly_cost(StorageClass::Standard, 2 * gb) - 0.1).abs() < 1e-12);
    }
}
