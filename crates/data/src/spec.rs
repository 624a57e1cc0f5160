//! Data specs: the columns a shard must have, loaded from YAML.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, Schema};
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// Specs compiled into the binary, by name, so it works from any folder.
const EMBEDDED: &[(&str, &str)] = &[
    ("webli", include_str!("../../../data_specs/webli.yaml")),
    ("shapes", include_str!("../../../data_specs/shapes.yaml")),
    ("caption", include_str!("../../../data_specs/caption.yaml")),
    ("vqa", include_str!("../../../data_specs/vqa.yaml")),
    ("refcoco", include_str!("../../../data_specs/refcoco.yaml")),
    ("video", include_str!("../../../data_specs/video.yaml")),
];

/// A named description of a shard schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// Short name, also the file stem under `data_specs/`.
    pub name: String,
    /// Free-form description.
    #[serde(default)]
    pub description: String,
    /// The columns the spec knows about.
    pub columns: Vec<ColumnSpec>,
    /// Whether columns not listed are tolerated.
    #[serde(default)]
    pub extra_columns: ExtraColumns,
    /// How one dataset's files fill the spec's columns (a config's `columns:` and `lang`); set
    /// by [`DataSpec::bind`], never by a spec file.
    #[serde(skip)]
    pub binding: Binding,
}

/// A dataset's own column names for a spec's columns, and its language when it has no column.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Binding {
    /// Spec column → the shards' column holding it (`{image: jpg, text: caption}`).
    pub columns: BTreeMap<String, String>,
    /// Language of rows without a `lang` value (default `en`).
    pub lang: Option<String>,
}

impl Binding {
    /// The language of rows without a `lang` value.
    pub fn lang(&self) -> &str {
        self.lang.as_deref().unwrap_or("en")
    }
}

/// One column of a spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Column name in the Parquet/Arrow schema.
    pub name: String,
    /// Logical type; several Arrow types may satisfy it.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Whether every shard must have the column.
    #[serde(default = "default_required")]
    pub required: bool,
    /// Free-form description.
    #[serde(default)]
    pub doc: String,
}

fn default_required() -> bool {
    true
}

/// Logical column types a spec can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Binary, LargeBinary or BinaryView.
    Binary,
    /// Utf8, LargeUtf8 or Utf8View.
    Utf8,
    /// Boolean.
    Bool,
    /// Int32.
    Int32,
    /// Int64.
    Int64,
    /// Float32.
    Float32,
    /// Float64.
    Float64,
    /// Any list type; the element type is not checked.
    List,
    /// Any struct type; the fields are not checked.
    Struct,
}

impl ColumnType {
    /// Whether an Arrow type satisfies this logical type.
    pub fn accepts(self, dt: &DataType) -> bool {
        use DataType as D;
        match self {
            // A Hugging Face `Image` struct `{bytes, path}` holds encoded images too.
            ColumnType::Binary => crate::column::is_image_type(dt),
            ColumnType::Utf8 => matches!(dt, D::Utf8 | D::LargeUtf8 | D::Utf8View),
            ColumnType::Bool => matches!(dt, D::Boolean),
            ColumnType::Int32 => matches!(dt, D::Int32),
            ColumnType::Int64 => matches!(dt, D::Int64),
            ColumnType::Float32 => matches!(dt, D::Float32),
            ColumnType::Float64 => matches!(dt, D::Float64),
            ColumnType::List => matches!(
                dt,
                D::List(_) | D::LargeList(_) | D::FixedSizeList(..) | D::ListView(_)
            ),
            ColumnType::Struct => matches!(dt, D::Struct(_)),
        }
    }

    /// The spelling used in spec files.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Binary => "binary",
            ColumnType::Utf8 => "utf8",
            ColumnType::Bool => "bool",
            ColumnType::Int32 => "int32",
            ColumnType::Int64 => "int64",
            ColumnType::Float32 => "float32",
            ColumnType::Float64 => "float64",
            ColumnType::List => "list",
            ColumnType::Struct => "struct",
        }
    }
}

/// Policy for columns a spec does not list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtraColumns {
    /// Unlisted columns are ignored.
    #[default]
    Allowed,
    /// Unlisted columns are a schema error.
    Forbidden,
}

impl DataSpec {
    /// Reads and validates a spec from a YAML file.
    pub fn load(path: &Path) -> Result<DataSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and validates spec YAML; `origin` is only used in error messages.
    pub fn parse(yaml: &str, origin: &Path) -> Result<DataSpec> {
        let spec: DataSpec = serde_norway::from_str(yaml).map_err(|e| DataError::Spec {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        spec.validate(origin)?;
        Ok(spec)
    }

    /// Loads `specs_dir/NAME.yaml`, falling back to the built-in spec of that name.
    pub fn by_name(specs_dir: &Path, name: &str) -> Result<DataSpec> {
        let path = specs_dir.join(format!("{name}.yaml"));
        if path.is_file() {
            let spec = Self::load(&path)?;
            if spec.name != name {
                return Err(DataError::Spec {
                    path,
                    message: format!(
                        "declares name {:?} but was asked for as {name:?}",
                        spec.name
                    ),
                });
            }
            return Ok(spec);
        }
        tracing::debug!(path = %path.display(), "spec file absent, using built-in spec {name:?}");
        Self::embedded(name).map_err(|_| DataError::UnknownSpec {
            name: name.to_string(),
            path,
            known: Self::embedded_names().join(", "),
        })
    }

    /// The spec a config or command line names: a YAML file when `name` ends in `.yaml` or
    /// `.yml`, else a built-in spec. The one resolver of spec names.
    pub fn named(name: &str) -> Result<DataSpec> {
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            Self::load(Path::new(name))
        } else {
            Self::embedded(name)
        }
    }

    /// Returns the spec compiled into the binary under `name`.
    pub fn embedded(name: &str) -> Result<DataSpec> {
        let origin = PathBuf::from(format!("<embedded:{name}>"));
        match EMBEDDED.iter().find(|(n, _)| *n == name) {
            Some((_, yaml)) => Self::parse(yaml, &origin),
            None => Err(DataError::UnknownSpec {
                name: name.to_string(),
                path: origin,
                known: Self::embedded_names().join(", "),
            }),
        }
    }

    /// Names of the specs compiled into the binary.
    pub fn embedded_names() -> Vec<&'static str> {
        EMBEDDED.iter().map(|(n, _)| *n).collect()
    }

    /// This spec read through a dataset's column names (`columns`: spec column → the shards'
    /// column) and default language; `key` names the config key in errors. A spec column that
    /// does not exist, or one shard column given two roles, is refused.
    pub fn bind(
        mut self,
        columns: &BTreeMap<String, String>,
        lang: Option<&str>,
        key: &str,
    ) -> Result<DataSpec> {
        let mut used = BTreeMap::new();
        for (role, column) in columns {
            if self.column(role).is_none() {
                let known: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
                return Err(DataError::config(
                    &format!("{key}.{role}"),
                    format!(
                        "spec {:?} has no column {role:?} to map; its columns are {}",
                        self.name,
                        known.join(", ")
                    ),
                ));
            }
            if let Some(other) = used.insert(column.as_str(), role.as_str()) {
                return Err(DataError::config(
                    key,
                    format!("column {column:?} is mapped to both {other:?} and {role:?}"),
                ));
            }
        }
        self.binding = Binding {
            columns: columns.clone(),
            lang: lang.map(str::to_string),
        };
        Ok(self)
    }

    /// The spec's entry for `name`, if listed.
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Checks an Arrow schema read from `file` against this spec.
    pub fn check_schema(&self, schema: &Schema, file: &Path) -> Result<()> {
        let err = |column: &str, message: String| DataError::Schema {
            file: file.to_path_buf(),
            column: column.to_string(),
            message,
        };
        for col in &self.columns {
            match schema.field_with_name(&col.name) {
                Ok(field) if !col.ty.accepts(field.data_type()) => {
                    return Err(err(
                        &col.name,
                        format!(
                            "has type {} but spec {:?} wants {}",
                            field.data_type(),
                            self.name,
                            col.ty.as_str()
                        ),
                    ));
                }
                Ok(_) => {}
                Err(_) if col.required => {
                    return Err(err(
                        &col.name,
                        format!("required by spec {:?} but missing", self.name),
                    ));
                }
                Err(_) => {}
            }
        }
        if self.extra_columns == ExtraColumns::Forbidden {
            if let Some(extra) = schema
                .fields()
                .iter()
                .find(|f| self.column(f.name()).is_none())
            {
                return Err(err(
                    extra.name(),
                    format!("not in spec {:?}, which forbids extra columns", self.name),
                ));
            }
        }
        Ok(())
    }

    fn validate(&self, origin: &Path) -> Result<()> {
        let err = |message: String| DataError::Spec {
            path: origin.to_path_buf(),
            message,
        };
        if self.name.trim().is_empty() {
            return Err(err("name is empty".into()));
        }
        if self.columns.is_empty() {
            return Err(err("lists no columns".into()));
        }
        let mut seen = BTreeSet::new();
        for col in &self.columns {
            if !seen.insert(col.name.as_str()) {
                return Err(err(format!("column {:?} is listed twice", col.name)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    #[test]
    fn a_name_is_a_spec_file_by_either_yaml_extension_else_built_in() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = EMBEDDED.iter().find(|(n, _)| *n == "caption").unwrap().1;
        for ext in ["yaml", "yml"] {
            let path = dir.path().join(format!("mine.{ext}"));
            std::fs::write(&path, yaml).unwrap();
            assert_eq!(
                DataSpec::named(path.to_str().unwrap()).unwrap().name,
                "caption"
            );
        }
        assert_eq!(DataSpec::named("vqa").unwrap().name, "vqa");
        let missing = dir.path().join("absent.yml");
        let e = DataSpec::named(missing.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("absent.yml"), "{e}");
        let e = DataSpec::named("nonesuch").unwrap_err().to_string();
        assert!(e.contains("nonesuch") && e.contains("webli"), "{e}");
    }

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn embedded_webli_lists_required_columns() {
        let spec = DataSpec::embedded("webli").unwrap();
        assert_eq!(spec.name, "webli");
        let required: Vec<_> = spec
            .columns
            .iter()
            .filter(|c| c.required)
            .map(|c| c.name.as_str())
            .collect();
        // `lang` is optional (img2dataset writes none; `data.lang` defaults it).
        assert_eq!(required, ["image", "text"]);
        assert_eq!(spec.extra_columns, ExtraColumns::Allowed);
    }

    #[test]
    fn embedded_matches_file_on_disk() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data_specs");
        for name in DataSpec::embedded_names() {
            let on_disk = DataSpec::by_name(&dir, name).unwrap();
            assert_eq!(on_disk, DataSpec::embedded(name).unwrap(), "{name}");
        }
    }

    #[test]
    fn unknown_name_errors_with_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = DataSpec::by_name(dir.path(), "nope")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.yaml"), "{err}");
        assert!(err.contains("webli"), "{err}");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let yaml = "name: x\ncolumns: [{name: a, type: utf8}]\nbogus: 1\n";
        let err = DataSpec::parse(yaml, Path::new("x.yaml")).unwrap_err();
        assert!(err.to_string().contains("x.yaml"), "{err}");
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn duplicate_column_is_rejected() {
        let yaml = "name: x\ncolumns: [{name: a, type: utf8}, {name: a, type: binary}]\n";
        let err = DataSpec::parse(yaml, Path::new("x.yaml")).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }

    #[test]
    fn large_variants_are_accepted() {
        let spec = DataSpec::embedded("webli").unwrap();
        let s = schema(&[
            ("image", DataType::LargeBinary),
            ("text", DataType::LargeUtf8),
            ("lang", DataType::Utf8),
            ("other", DataType::Int64),
        ]);
        spec.check_schema(&s, Path::new("a.parquet")).unwrap();
        let s = schema(&[
            ("image", DataType::Binary),
            ("text", DataType::Utf8),
            ("lang", DataType::Utf8),
        ]);
        spec.check_schema(&s, Path::new("a.parquet")).unwrap();
    }

    #[test]
    fn missing_or_mistyped_column_names_file_and_column() {
        let spec = DataSpec::embedded("webli").unwrap();
        let missing = schema(&[("image", DataType::Binary), ("lang", DataType::Utf8)]);
        let err = spec
            .check_schema(&missing, Path::new("shard-7.parquet"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("shard-7.parquet") && err.contains("\"text\""),
            "{err}"
        );
        assert!(err.contains("missing"), "{err}");

        let wrong = schema(&[
            ("image", DataType::Utf8),
            ("text", DataType::Utf8),
            ("lang", DataType::Utf8),
        ]);
        let err = spec
            .check_schema(&wrong, Path::new("shard-8.parquet"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("shard-8.parquet") && err.contains("\"image\""),
            "{err}"
        );
        assert!(err.contains("binary"), "{err}");
    }

    #[test]
    fn optional_column_with_wrong_type_is_rejected() {
        let spec = DataSpec::embedded("webli").unwrap();
        let s = schema(&[
            ("image", DataType::Binary),
            ("text", DataType::Utf8),
            ("lang", DataType::Utf8),
            ("id", DataType::Int64),
        ]);
        let err = spec.check_schema(&s, Path::new("f.parquet")).unwrap_err();
        assert!(err.to_string().contains("\"id\""), "{err}");
    }

    #[test]
    fn forbidden_extra_column_is_named() {
        let yaml = "name: x\ncolumns: [{name: a, type: utf8}]\nextra_columns: forbidden\n";
        let spec = DataSpec::parse(yaml, Path::new("x.yaml")).unwrap();
        let s = schema(&[("a", DataType::Utf8), ("b", DataType::Utf8)]);
        let err = spec.check_schema(&s, Path::new("f.parquet")).unwrap_err();
        assert!(err.to_string().contains("\"b\""), "{err}");
    }
}
