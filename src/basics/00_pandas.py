"""Pandas for LLM data: load, filter, group and measure an instruction data set in tokens.

What you learn: read a JSONL instruction data set (Alpaca shape: instruction,
input, output) into a DataFrame, filter and group it, and measure it the way a
model sees it, in tokens of the default model's tokenizer; then plot the
length distribution, which decides the max sequence length for fine-tuning.

Run:  python src/basics/00_pandas.py      (or: llm-deeper lessons run basics/00)
Time: about 5 s on 2 CPU cores (the tokenizer loads in ~2 s; no weights are read).
"""

# %% The data set the project ships
import numpy as np
import pandas as pd

from llm_deeper.data.fixtures_data import instructions_path
from llm_deeper.lesson import check, done, output_dir, saved, section, show

section("Load the JSONL into a DataFrame")
path = instructions_path()
df = pd.read_json(path, lines=True)  # one JSON object per line → one row per record
show("file", path.name)
show("shape (rows, columns)", df.shape)
show("columns", list(df.columns))
print(df[["category", "instruction"]].head(5).to_string(index=False))
check("every record has instruction, input, output and category", set(df.columns) == {"instruction", "input", "output", "category"})
check("no missing values", not df.isna().any().any(), f"{len(df)} rows")
with open(path, encoding="utf-8") as f:
    lines = sum(1 for line in f if line.strip())
check("one row per JSONL line", len(df) == lines, f"{lines} lines")

# %% Filtering: boolean masks select rows
section("Filter rows with a boolean mask")
has_input = df["input"].str.len() > 0  # a Series of True/False, one per row
with_input, without_input = df[has_input], df[~has_input]
show("records with an input field", len(with_input))
show("records without", len(without_input))
check("a mask and its negation split the data set exactly", len(with_input) + len(without_input) == len(df))
coding = df.query("category == 'coding'")  # the same idea, written as a query string
show("coding records", len(coding))
check("query() and a boolean mask select the same rows", coding.index.equals(df[df["category"] == "coding"].index))

# %% Grouping: one row per category
section("Group by category")
df["output_chars"] = df["output"].str.len()
by_category = df.groupby("category").agg(records=("instruction", "size"), with_input=("input", lambda s: int((s.str.len() > 0).sum())), mean_output_chars=("output_chars", "mean"))
print(by_category.sort_values("records", ascending=False).round(1).to_string())
check("group sizes add up to the data set", int(by_category["records"].sum()) == len(df), f"{len(by_category)} categories")
check("groupby mean equals a hand-filtered mean", np.isclose(by_category.loc["math", "mean_output_chars"], df[df["category"] == "math"]["output_chars"].mean()))

# %% Token lengths, as the model sees the text
section("Measure in tokens with the default model's tokenizer")
from llm_deeper.models.loaders import load_tokenizer  # noqa: E402  (imported here: it is the slow part)

tokenizer = load_tokenizer("smollm2-135m-instruct")
show("tokenizer", f"{type(tokenizer).__name__}, vocabulary {len(tokenizer)}")
df["text"] = df["instruction"] + "\n" + df["input"] + "\n" + df["output"]  # vectorised string concatenation
ids = tokenizer(df["text"].tolist(), add_special_tokens=False)["input_ids"]
df["tokens"] = [len(x) for x in ids]
df["chars"] = df["text"].str.len()
example = tokenizer.convert_ids_to_tokens(ids[7][:12])
show("first tokens of record 7", example)
stats = df["tokens"].describe(percentiles=[0.5, 0.9])
print(stats.round(1).to_string())
ratio = df["chars"].sum() / df["tokens"].sum()
show("characters per token", f"{ratio:.2f}")
check("every text round-trips through the tokenizer", all(tokenizer.decode(x) == t for x, t in zip(ids, df["text"])))
check("BPE merges characters: fewer tokens than characters in every record", bool((df["tokens"] < df["chars"]).all()), f"{ratio:.2f} chars/token")
per_category = df.groupby("category")["tokens"].median().sort_values()
print(per_category.to_string())
check("short-answer categories are shorter than open-ended ones", per_category["classification"] < per_category["brainstorming"])
max_len = 128
fits = float((df["tokens"] <= max_len).mean())
show(f"share of records that fit in {max_len} tokens", f"{fits:.0%}")
check(f"a {max_len}-token context holds at least 90% of the records", fits >= 0.9)

# %% A histogram, saved as PNG
section("Histogram of token lengths")
import matplotlib  # noqa: E402

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(df["tokens"], bins=20, color="#4477aa", edgecolor="white")
ax.axvline(stats["50%"], color="black", linestyle="--", label=f"median {stats['50%']:.0f}")
ax.set_xlabel("tokens per record (SmolLM2 tokenizer)")
ax.set_ylabel("records")
ax.set_title(f"{len(df)} instruction records")
ax.legend()
fig.tight_layout()
png = output_dir("basics_00") / "token_lengths.png"
fig.savefig(png, dpi=100)
plt.close(fig)
saved(png)
check("the histogram PNG was written", png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png.stat().st_size} bytes")

done()
