//! The `.types` sidecar that declares a CSV file's column types (`<file>.types`, one
//! `column type` line per column): where it is, and how it spells each type.

use std::path::{Path, PathBuf};

use sluice_sandbox::{DataType, TimeUnit};

/// The sidecar that declares a CSV file's column types.
pub fn types_path(csv: &Path) -> PathBuf {
    let mut name = csv.as_os_str().to_owned();
    name.push(".types");
    PathBuf::from(name)
}

/// `int64`, `float64`, `boolean`, `text`, `binary`, `date`, `timestamp`, `timestamp(UTC)`,
/// `decimal(12,2)`: a type as the `.types` sidecar spells it.
pub fn parse_type(text: &str) -> Option<DataType> {
    let text = text.trim();
    Some(match text {
        "int64" => DataType::Int64,
        "float64" => DataType::Float64,
        "boolean" => DataType::Boolean,
        "text" => DataType::Utf8,
        "binary" => DataType::Binary,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
        _ => {
            let (head, args) = text.strip_suffix(')')?.split_once('(')?;
            match head {
                "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some(args.into())),
                "decimal" => {
                    let (p, s) = args.split_once(',')?;
                    let (p, s): (u8, i8) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
                    ((1..=38).contains(&p) && s >= 0 && s as u8 <= p)
                        .then_some(DataType::Decimal128(p, s))?
                }
                _ => return None,
            }
        }
    })
}

/// A type as the `.types` sidecar spells it (the inverse of [`parse_type`]).
pub fn type_name(ty: &DataType) -> Option<String> {
    Some(match ty {
        DataType::Int64 => "int64".into(),
        DataType::Float64 => "float64".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Utf8 => "text".into(),
        DataType::Binary => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => format!("timestamp({tz})"),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_types_round_trip() {
        for ty in [
            DataType::Int64,
            DataType::Float64,
            DataType::Boolean,
            DataType::Utf8,
            DataType::Binary,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Decimal128(12, 2),
        ] {
            assert_eq!(parse_type(&type_name(&ty).unwrap()), Some(ty));
        }
        assert_eq!(parse_type("decimal(40,2)"), None);
        assert_eq!(parse_type("list<int>"), None);
    }
}
