"""tools/embed_codes.py: ICD-10 descriptions encoded by a PaddleNLP model (the nlp extra; `make test-nlp`).

Pretrained weights cannot be downloaded here: each test builds a tiny, randomly initialised ERNIE
and its word-piece vocabulary in a temporary directory, as a user's downloaded model would be laid out.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ppeye  # noqa: F401
from conftest import ROOT
from ppeye.core.errors import ConfigError, DataError
from ppeye.core.io import sha256
from ppeye.core.optional import require
from ppeye.core.paddle_env import import_paddle
from ppeye.engine.code_embeddings import (encode_texts, icd10_descriptions, load_code_embeddings, read_descriptions,
                                          write_code_embeddings)

pytestmark = pytest.mark.nlp
paddle = import_paddle()
WORDS = ("[PAD] [UNK] [CLS] [SEP] [MASK] type 2 diabetes mellitus without complications essential primary "
         "hypertension myopia chorioretinal scars choroidal degeneration retinal detachment").split()


def tiny_model(path, safe=True):
    transformers = require("paddlenlp.transformers")      # the nlp extra: these tests run under make test-nlp
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "vocab.txt"), "w") as f:
        f.write("\n".join(WORDS) + "\n")
    cfg = transformers.ErnieConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=32, max_position_embeddings=32, type_vocab_size=2)
    paddle.seed(0)
    transformers.ErnieModel(cfg).save_pretrained(path, safe_serialization=safe)
    transformers.BertTokenizer(os.path.join(path, "vocab.txt")).save_pretrained(path)
    return str(path)


def test_the_who_titles_cover_every_category_and_subcategory():
    desc = icd10_descriptions()
    assert len(desc) > 12000 and desc["E119"] == "Type 2 diabetes mellitus without complications"
    assert desc["H521"] == "Myopia" and desc["E11"] == "Type 2 diabetes mellitus" and "A00-A09" not in desc


def test_a_description_is_encoded_the_same_alone_or_padded_in_a_batch(tmp_path):
    model = tiny_model(tmp_path / "m")
    alone, digest = encode_texts(["myopia"], model)
    batch, _ = encode_texts(["myopia", "type 2 diabetes mellitus without complications"], model, batch_size=2)
    np.testing.assert_allclose(alone[0], batch[0], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert digest == sha256(os.path.join(model, "model.safetensors"))


def test_the_table_round_trips_with_its_metadata_and_refuses_to_be_overwritten_or_changed(tmp_path):
    model = tiny_model(tmp_path / "m")
    out = str(tmp_path / "emb" / "codes")
    meta = write_code_embeddings(out, {"H521": "Myopia", "H310": "Chorioretinal scars"}, model)
    codes, vectors = load_code_embeddings(out)
    assert codes.tolist() == ["H310", "H521"] and vectors.shape == (2, 16) and meta["dim"] == 16
    stored = json.load(open(out + ".json"))
    assert stored["weights_sha256"] == sha256(os.path.join(model, "model.safetensors"))
    assert stored["versions"]["paddlenlp"] and stored["model_config"]["hidden_size"] == 16
    with pytest.raises(ConfigError, match="exists"):
        write_code_embeddings(out, {"H521": "Myopia"}, model)
    with open(out + ".npz", "ab") as f:
        f.write(b"x")
    with pytest.raises(DataError, match="SHA-256"):
        load_code_embeddings(out)


def test_pickled_weights_load_only_with_their_hash(tmp_path):
    model = tiny_model(tmp_path / "p", safe=False)
    weights = [f for f in os.listdir(model) if f.endswith(".pdparams")][0]
    with pytest.raises(ConfigError, match="pickle.*--weights_sha256"):
        encode_texts(["myopia"], model)
    with pytest.raises(ConfigError, match="not the expected"):
        encode_texts(["myopia"], model, weights_sha256="0" * 64)
    vectors, _ = encode_texts(["myopia"], model, weights_sha256=sha256(os.path.join(model, weights)))
    assert vectors.shape == (1, 16)


def test_own_descriptions_are_checked(tmp_path):
    (tmp_path / "ok.csv").write_text("code,description\nH52.1,Myopia\nE119,Type 2 diabetes\n")
    assert read_descriptions(tmp_path / "ok.csv") == {"H521": "Myopia", "E119": "Type 2 diabetes"}
    (tmp_path / "bad.csv").write_text("code,text\nH521,Myopia\n")
    with pytest.raises(DataError, match="description"):
        read_descriptions(tmp_path / "bad.csv")
    (tmp_path / "twice.csv").write_text("code,description\nH521,Myopia\nH52.1,Myopia again\n")
    with pytest.raises(DataError, match="twice"):
        read_descriptions(tmp_path / "twice.csv")


def test_the_tool_writes_the_who_table(tmp_path):
    model = tiny_model(tmp_path / "m")
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "embed_codes.py"), "--model", model,
                          "--output", str(tmp_path / "icd10"), "--batch_size", "512"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    codes, vectors = load_code_embeddings(str(tmp_path / "icd10"))
    assert len(codes) > 12000 and vectors.shape == (len(codes), 16) and np.isfinite(vectors).all()
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "embed_codes.py"), "--model", str(tmp_path / "no"),
                          "--output", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "not a directory" in res.stderr
