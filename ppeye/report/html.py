"""The report's Markdown as one self-contained HTML page (figures inlined as base64 PNG).

Only the Markdown the report itself writes is understood: ``#`` headings, pipe tables, ``- ``
bullets, images on a line of their own, paragraphs, and inline ``**bold**`` and `` `code` ``.
"""
import base64
import html
import os
import re

STYLE = """body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;line-height:1.45;
color:#222}table{border-collapse:collapse;margin:0.6rem 0;font-size:0.9rem}th,td{border:1px solid #ccc;
padding:0.2rem 0.5rem;text-align:left;vertical-align:top}th{background:#f2f2f2}img{max-width:100%;
border:1px solid #eee}code{background:#f5f5f5;padding:0 0.2rem}.authors{color:#a33}"""

_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")


def _inline(text):
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return out


def _cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(lines):
    rows = [_cells(x) for x in lines if not re.fullmatch(r"\|?[\s:|-]+\|?", x.strip())]
    head, body = rows[0], rows[1:]
    out = ["<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body]
    return "\n".join(out + ["</tbody></table>"])


def _image(alt, src, base_dir):
    path = os.path.join(base_dir, src)
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>' \
           f"{_inline(alt)}</figcaption></figure>"


def to_html(markdown, base_dir, title):
    """``markdown`` (whose image paths are relative to ``base_dir``) as an HTML page."""
    lines, out, i = markdown.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            out.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|"):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            out.append(_table(lines[i:j]))
            i = j
        elif _IMAGE.match(line.strip()):
            m = _IMAGE.match(line.strip())
            out.append(_image(m["alt"], m["src"], base_dir))
            i += 1
        elif line.startswith("- "):
            items = []
            while i < len(lines) and (lines[i].startswith("- ") or lines[i].startswith("  ")):
                if lines[i].startswith("- "):
                    items.append(lines[i][2:].strip())
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            out.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in items) + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "- ")) \
                    and not _IMAGE.match(lines[i].strip()):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    body = "\n".join(out)
    return f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>" \
           f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n"
