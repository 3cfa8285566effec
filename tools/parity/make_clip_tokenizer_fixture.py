#!/usr/bin/env python3
"""Parity fixture for deda-edit's CLIP BPE tokenizer (crates/edit/src/tokenizer.rs).

Pinned versions: see tools/parity/requirements.txt (transformers==4.57.3, tokenizers==0.22.2,
and ftfy NOT installed, so that CLIPTokenizer takes its ftfy-less path: BERT BasicTokenizer
cleanup = drop control chars, spaces around CJK ideographs, NFC, whitespace split, lowercase).

Usage (from the repository root, with the project venv):
    .venv/bin/python tools/parity/make_clip_tokenizer_fixture.py \
        --bpe <shared>/models/clip/bpe_simple_vocab_16e6.txt.gz \
        [--out crates/edit/tests/fixtures/clip_tokenizer.json]

How the tokenizer is built: transformers' CLIPTokenizer (the slow, pure-Python class that
`openai/clip-vit-large-patch14` and SD-1.5 load) needs vocab.json + merges.txt. Both are derived
from the original OpenAI `bpe_simple_vocab_16e6.txt.gz` exactly as openai/CLIP's
`SimpleTokenizer.__init__` does (clip/simple_tokenizer.py):
    merges = lines[1 : 49152 - 256 - 2 + 1]
    vocab  = bytes_to_unicode() chars, then each + '</w>', then ''.join(merge) for every merge,
             then '<|startoftext|>', '<|endoftext|>'         (49408 entries, ids in that order)
merges.txt gets a '#version: 0.2' header line (CLIPTokenizer skips the first line).
The tokenizer is then CLIPTokenizer(vocab.json, merges.txt) with its defaults (bos
<|startoftext|> 49406, eos = pad = unk = <|endoftext|> 49407), i.e. the SD-1.5 configuration.
The script checks that the rebuilt vocabulary has 49408 entries and the expected special ids.

Output JSON:
  versions         package versions used
  max_length       77
  cases[]          {prompt, ids}: tokenizer(prompt, padding="max_length", max_length=77,
                   truncation=True).input_ids; plus `unpadded` = tokenizer(prompt).input_ids
                   (no truncation), `decoded` = decode(unpadded, skip_special_tokens=True,
                   clean_up_tokenization_spaces=False), and `fast_agrees`: whether
                   CLIPTokenizerFast (the tokenizers-backed class, transformers 5's only one)
                   gives the same padded ids (information only; the Rust code follows the slow
                   class).
  added_tokens     ["<cdp-bird-0>", "<cdp-bird-1>"] added with tokenizer.add_tokens (ids 49408+)
  added_cases[]    same fields, tokenized after adding them
"""
import argparse
import gzip
import importlib.metadata as md
import json
import os
import tempfile

from transformers import CLIPTokenizer, CLIPTokenizerFast
from transformers.models.clip.tokenization_clip import bytes_to_unicode

PROMPTS = [
    "",
    "a photo of a bird",
    "a photo of a <cdp-bird-0> bird",
    "A Photo Of A Bird",
    "A PHOTO OF A LAYSAN ALBATROSS",
    "a photo of a Black_footed_Albatross",
    "a photo of a 'Boeing 737-800' aircraft",
    "a photo of a 2012 BMW M3 coupe",
    "1234567890",
    "3.14159 and 2,718",
    "hello, world!",
    "what's up? it's fine; they're here, we've gone, I'm ok, you'll see, he'd go",
    "don't won't can't",
    "'S 'T 'RE 'VE 'M 'LL 'D",
    "   leading and trailing spaces   ",
    "multiple     spaces\tand\ttabs\nand\nnewlines\r\nhere",
    "café naïve résumé",
    "Crème Brûlée à la française",
    "cafe\u0301 (combining accent)",
    "Ångström Øresund Ærø",
    "straße groß",
    "ΣΊΣΥΦΟΣ and ολος",
    "Привет мир",
    "こんにちは世界",
    "中文字符测试",
    "한국어 텍스트",
    "emoji 🐦 bird 🦅 eagle",
    "family 👨‍👩‍👧 emoji with zwj",
    "flags 🇺🇸 🇯🇵",
    "heart ❤️ and star ⭐",
    "symbols @#$%^&*()_+-=[]{}|;:,.<>/?",
    "quotes \"double\" and 'single' and `back`",
    "a--b...c!!!d???",
    "email me at someone@example.com",
    "http://www.example.com/path?query=1",
    "snake_case_word and CamelCaseWord",
    "hyphen-ated words-here",
    "numbers 1st 2nd 3rd 4th 100%",
    "fractions ½ ¾ and superscripts ² ³",
    "roman numerals Ⅻ ⅻ",
    "arabic numerals ٣٤٥",
    "full-width ＡＢＣ １２３",
    "non\u00a0breaking\u2009thin\u3000ideographic spaces",
    "zero\u200bwidth\u200bspace",
    "control\x00chars\x07here\x1b[0m",
    "soft\u00adhyphen",
    "a photo of a <|endoftext|> token",
    "<|startoftext|>a photo<|endoftext|>",
    "supercalifragilisticexpialidocious",
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "a high quality photo of a small bird perched on a branch, realistic, detailed, 8k",
    "the the the the the",
    "x",
    ".",
    "!!!",
    "İstanbul DİYARBAKIR",
    "ﬁne ﬂow (ligatures)",
    "tab\tonly",
    "a photo of a bird " * 20,
    " ".join(f"word{i}" for i in range(80)),
]

ADDED = ["<cdp-bird-0>", "<cdp-bird-1>"]
ADDED_PROMPTS = [
    "a photo of a <cdp-bird-0> bird",
    "a photo of a <cdp-bird-1> bird",
    "<cdp-bird-0><cdp-bird-1>",
    "a<cdp-bird-0>b",
    "A PHOTO OF A <cdp-bird-0> BIRD",
    "a photo of a <CDP-BIRD-0> bird",
    "  <cdp-bird-1>  ",
    "a photo of a <cdp-bird-0> bird on a branch, <cdp-bird-1> in flight",
]


def write_vocab_files(bpe_path, folder):
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    encoder = dict(zip(vocab, range(len(vocab))))
    assert len(encoder) == 49408, len(encoder)
    vocab_file = os.path.join(folder, "vocab.json")
    merges_file = os.path.join(folder, "merges.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        json.dump(encoder, f, ensure_ascii=False)
    with open(merges_file, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.write("\n".join(" ".join(m) for m in merges) + "\n")
    return vocab_file, merges_file


def case(slow, fast, prompt):
    padded = slow(prompt, padding="max_length", max_length=77, truncation=True).input_ids
    unpadded = slow(prompt).input_ids
    fast_ids = fast(prompt, padding="max_length", max_length=77, truncation=True).input_ids
    decoded = slow.decode(unpadded, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return {
        "prompt": prompt,
        "ids": padded,
        "unpadded": unpadded,
        "decoded": decoded,
        "fast_agrees": fast_ids == padded,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bpe", required=True)
    ap.add_argument("--out", default="crates/edit/tests/fixtures/clip_tokenizer.json")
    args = ap.parse_args()
    try:
        import ftfy  # noqa: F401

        raise SystemExit("uninstall ftfy: the fixture records CLIPTokenizer's ftfy-less path")
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as d:
        vocab_file, merges_file = write_vocab_files(args.bpe, d)
        slow = CLIPTokenizer(vocab_file, merges_file)
        fast = CLIPTokenizerFast(vocab_file, merges_file)
        assert slow.bos_token_id == 49406 and slow.eos_token_id == 49407, "special ids"
        assert slow.pad_token_id == 49407, "pad id"
        cases = [case(slow, fast, p) for p in PROMPTS]
        slow.add_tokens(ADDED)
        fast.add_tokens(ADDED)
        added_ids = slow.convert_tokens_to_ids(ADDED)
        assert added_ids == [49408, 49409], added_ids
        added_cases = [case(slow, fast, p) for p in ADDED_PROMPTS]
    out = {
        "versions": {p: md.version(p) for p in ["transformers", "tokenizers"]},
        "max_length": 77,
        "cases": cases,
        "added_tokens": ADDED,
        "added_ids": added_ids,
        "added_cases": added_cases,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=None)
        f.write("\n")
    disagree = [c["prompt"] for c in cases + added_cases if not c["fast_agrees"]]
    print(f"wrote {args.out}: {len(cases)} + {len(added_cases)} cases; fast tokenizer disagrees on {len(disagree)}:")
    for p in disagree:
        print("  ", repr(p))


if __name__ == "__main__":
    main()
