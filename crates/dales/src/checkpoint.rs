//! Safetensors checkpoints in the reference's `dales-ff/1` format
//! (`shared/reference/CHECKPOINT_FORMAT.md`): float32, row-major, matrices `(n_out, n_in)`,
//! 1-D vectors, names `hidden.{i}.<param>` and `output.<param>`, metadata `format` and `kind`.
//! PyTorch users load them with `safetensors.torch.load_file`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::tensor::Device;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::nn::init::InitRng;
use crate::nn::{
    AnyLayer, ColumnEiConfig, DannConfig, DenseConfig, Layer, Mlp, ModelKind, ParamValue,
    Parameterised,
};

/// The `format` metadata value.
pub const FORMAT: &str = "dales-ff/1";

/// Named f32 tensors (row-major values and shape), the content of a safetensors file.
pub type NamedTensors = BTreeMap<String, (Vec<f32>, Vec<usize>)>;

/// Encode named f32 tensors with metadata as safetensors bytes.
pub fn encode(tensors: &NamedTensors, metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, (values, shape))| {
            let b = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.clone(), b, shape.clone())
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, b, shape)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), b)
                .expect("shape and byte length agree by construction");
            (name.as_str(), view)
        })
        .collect::<Vec<_>>();
    let mut bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::config("safetensors", e, "a serialisable tensor set"))?;
    sort_header(&mut bytes);
    Ok(bytes)
}

/// Rewrite the JSON header with its keys sorted, in place: safetensors writes the metadata map in
/// hash order, so the same tensors would otherwise give different bytes from run to run.
fn sort_header(bytes: &mut [u8]) {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8-byte header length")) as usize;
    let header = &bytes[8..8 + n];
    let value: serde_json::Value =
        serde_json::from_slice(header).expect("safetensors wrote a JSON header");
    // serde_json's map is ordered by key; the compact form has the same length as the original.
    let sorted = serde_json::to_vec(&value).expect("JSON serialises");
    assert!(
        sorted.len() <= n,
        "sorted header is longer than the original"
    );
    bytes[8..8 + sorted.len()].copy_from_slice(&sorted);
    bytes[8 + sorted.len()..8 + n].fill(b' ');
}

/// Decode a safetensors file into f32 tensors and metadata; any other dtype is an error.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<(NamedTensors, HashMap<String, String>)> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::checkpoint(path, format!("not a safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::checkpoint(path, format!("unreadable header: {e}")))?;
    let mut out = NamedTensors::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::checkpoint(
                path,
                format!("tensor `{name}` has dtype {:?}, expected F32", view.dtype()),
            ));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(name, (values, view.shape().to_vec()));
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// Every parameter and buffer of `model` as f32 host tensors, named `{prefix}layer.param`.
pub fn named_tensors<M: Parameterised>(model: &M, prefix: &str) -> NamedTensors {
    Parameterised::named_entries(model)
        .into_iter()
        .map(|(name, e)| {
            (
                format!("{prefix}{name}"),
                (e.value.to_f32_vec(), e.value.shape()),
            )
        })
        .collect()
}

/// Write `model` as a `dales-ff/1` checkpoint (atomically).
pub fn save_mlp(model: &Mlp, kind: ModelKind, path: &Path) -> Result<()> {
    let tensors = named_tensors(model, "");
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("kind".to_string(), kind.name().to_string()),
    ]);
    write_atomic(path, &encode(&tensors, meta)?)
}

/// Read a `dales-ff/1` checkpoint: the model (sizes from the tensor shapes) and its kind.
///
/// The kind comes from the `kind` metadata when present (it distinguishes `dann_nocorr`),
/// otherwise from the parameter names. Missing, extra or mis-shaped tensors are errors that
/// name the tensor.
pub fn load_mlp(path: &Path, device: &Device) -> Result<(Mlp, ModelKind)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (mut tensors, meta) = decode(path, &bytes)?;
    let inferred = infer_kind(path, &tensors)?;
    let kind = match meta.get("kind") {
        Some(k) => {
            let k: ModelKind = k
                .parse()
                .map_err(|_| Error::checkpoint(path, format!("unknown kind `{k}` in metadata")))?;
            let family = if k == ModelKind::DannNocorr {
                ModelKind::Dann
            } else {
                k
            };
            if family != inferred {
                return Err(Error::checkpoint(
                    path,
                    format!("metadata says kind `{k}` but the tensors are a `{inferred}` model"),
                ));
            }
            k
        }
        None => inferred,
    };
    let n_layers = count_layers(path, &tensors)?;
    let mut layers = Vec::with_capacity(n_layers);
    let mut rng = InitRng::new(0);
    for i in 0..n_layers {
        let prefix = if i + 1 == n_layers {
            "output".to_string()
        } else {
            format!("hidden.{i}")
        };
        let skeleton = skeleton_layer(path, kind, &prefix, i == 0, &tensors, &mut rng, device)?;
        let values = skeleton
            .entries()
            .iter()
            .map(|e| {
                take(
                    &mut tensors,
                    &format!("{prefix}.{}", e.name),
                    &e.value,
                    path,
                    device,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        if i > 0 {
            let prev: &AnyLayer = &layers[i - 1];
            if prev.n_out() != skeleton.n_in() {
                return Err(Error::checkpoint(
                    path,
                    format!(
                        "layer `{prefix}` takes {} inputs but the previous layer has {} outputs",
                        skeleton.n_in(),
                        prev.n_out()
                    ),
                ));
            }
        }
        layers.push(skeleton.with_values(values));
    }
    if let Some(extra) = tensors.keys().next() {
        return Err(Error::checkpoint(
            path,
            format!("unexpected tensor `{extra}`"),
        ));
    }
    Ok((Mlp { layers }, kind))
}

/// Replace `model`'s values by those of a checkpoint with exactly the same names and shapes.
pub fn load_into<M: Parameterised>(model: M, path: &Path, device: &Device) -> Result<M> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (tensors, _) = decode(path, &bytes)?;
    fill(model, tensors, path, device)
}

/// Replace `model`'s values by `tensors`, which must hold exactly its names and shapes;
/// `origin` names the source in errors.
pub fn fill<M: Parameterised>(
    model: M,
    mut tensors: NamedTensors,
    origin: &Path,
    device: &Device,
) -> Result<M> {
    let mut values = Vec::new();
    for layer in model.param_layers() {
        let layer_values = layer
            .entries
            .iter()
            .map(|e| {
                take(
                    &mut tensors,
                    &format!("{}.{}", layer.name, e.name),
                    &e.value,
                    origin,
                    device,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        values.push(layer_values);
    }
    if let Some(extra) = tensors.keys().next() {
        return Err(Error::checkpoint(
            origin,
            format!("unexpected tensor `{extra}`"),
        ));
    }
    Ok(model.with_layer_values(values))
}

/// Remove tensor `name` from `tensors` as a value shaped like `like`; errors name the tensor.
fn take(
    tensors: &mut NamedTensors,
    name: &str,
    like: &ParamValue,
    origin: &Path,
    device: &Device,
) -> Result<ParamValue> {
    let (v, shape) = tensors
        .remove(name)
        .ok_or_else(|| Error::checkpoint(origin, format!("missing tensor `{name}`")))?;
    if shape != like.shape() {
        return Err(Error::checkpoint(
            origin,
            format!(
                "tensor `{name}` has shape {shape:?}, expected {:?}",
                like.shape()
            ),
        ));
    }
    Ok(ParamValue::from_f32(v, &shape, device))
}

fn infer_kind(path: &Path, tensors: &NamedTensors) -> Result<ModelKind> {
    let has = |p: &str| tensors.keys().any(|k| k.rsplit('.').next() == Some(p));
    if has("w_pos") {
        Ok(ModelKind::ColumnEi)
    } else if has("wex") {
        Ok(if has("alpha") {
            ModelKind::Dann
        } else {
            ModelKind::DannSubtractive
        })
    } else if has("ln_gain") {
        Ok(ModelKind::LayerNorm)
    } else if has("weight") {
        Ok(ModelKind::Mlp)
    } else {
        Err(Error::checkpoint(
            path,
            "no `weight`, `ln_gain`, `wex` or `w_pos` tensor: not a dales-ff/1 model",
        ))
    }
}

/// Number of layers: `hidden.0 … hidden.{L−1}` must be contiguous, and `output` present.
fn count_layers(path: &Path, tensors: &NamedTensors) -> Result<usize> {
    let mut hidden = std::collections::BTreeSet::new();
    let mut has_output = false;
    for name in tensors.keys() {
        let mut parts = name.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("hidden"), Some(i), Some(_), None) => {
                let i: usize = i
                    .parse()
                    .map_err(|_| Error::checkpoint(path, format!("bad layer index in `{name}`")))?;
                hidden.insert(i);
            }
            (Some("output"), Some(_), None, None) => has_output = true,
            _ => {
                return Err(Error::checkpoint(
                    path,
                    format!(
                        "unexpected tensor `{name}` (expected hidden.<i>.<param> or output.<param>)"
                    ),
                ));
            }
        }
    }
    if !has_output {
        return Err(Error::checkpoint(path, "missing the `output` layer"));
    }
    if let Some((pos, i)) = hidden.iter().enumerate().find(|(pos, i)| pos != *i) {
        return Err(Error::checkpoint(
            path,
            format!(
                "hidden layers must be numbered 0..L-1; `hidden.{pos}` is missing (found hidden.{i})"
            ),
        ));
    }
    Ok(hidden.len() + 1)
}

/// A layer of the right kind and sizes (read from the shapes), to be filled with the file's values.
fn skeleton_layer(
    path: &Path,
    kind: ModelKind,
    prefix: &str,
    first_layer: bool,
    tensors: &NamedTensors,
    rng: &mut InitRng,
    device: &Device,
) -> Result<AnyLayer> {
    let shape = |param: &str| -> Result<[usize; 2]> {
        let name = format!("{prefix}.{param}");
        match tensors.get(&name) {
            Some((_, s)) if s.len() == 2 && s[0] > 0 && s[1] > 0 => Ok([s[0], s[1]]),
            Some((_, s)) => Err(Error::checkpoint(
                path,
                format!(
                    "tensor `{name}` has shape {s:?}, expected a non-empty (n_out, n_in) matrix"
                ),
            )),
            None => Err(Error::checkpoint(path, format!("missing tensor `{name}`"))),
        }
    };
    let built = match kind {
        ModelKind::Mlp | ModelKind::LayerNorm => {
            let [n_out, n_in] = shape("weight")?;
            let c = DenseConfig {
                n_in,
                n_out,
                first_layer,
            };
            if kind == ModelKind::Mlp {
                c.init(rng, device).map(AnyLayer::Dense)
            } else {
                c.init_layer_norm(rng, device).map(AnyLayer::LayerNorm)
            }
        }
        ModelKind::ColumnEi => {
            let [n_out, n_in] = shape("w_pos")?;
            // The split only shapes the skeleton's init; the file's `sign` replaces it.
            ColumnEiConfig {
                n_in,
                n_out,
                ratio: 1,
                first_layer: true,
                pixel_mean: 0.0,
            }
            .init(rng, device)
            .map(AnyLayer::ColumnEi)
        }
        ModelKind::Dann | ModelKind::DannNocorr | ModelKind::DannSubtractive => {
            let [ne, n_in] = shape("wex")?;
            let [ni, _] = shape("wix")?;
            let c = DannConfig {
                n_in,
                ne,
                ni,
                first_layer,
            };
            if kind == ModelKind::DannSubtractive {
                c.init_subtractive(rng, device).map(AnyLayer::EiDense)
            } else {
                c.init(rng, device).map(AnyLayer::Dann)
            }
        }
    };
    built.map_err(|e| Error::checkpoint(path, format!("layer `{prefix}`: {e}")))
}
