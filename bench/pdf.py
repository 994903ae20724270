"""PDF text extraction: pypdf against pdfminer.six, and the service's own `extract_pdf`.

    python bench/pdf.py [--pages 20] [--docs 10]

Generates a statement PDF of `--pages` pages with fpdf2 (running header, page
numbers, paragraphs; tests/sites/pdfs.py), then, each in a fresh subprocess so
that memory figures do not mix, extracts it `--docs` times:

* pypdf: `PdfReader(...).pages[i].extract_text()` with a visitor that records
  each text run's position (what paragraphing needs);
* pdfminer.six: `extract_pages()` with its default layout analysis, every
  text line with its box;
* service: `monitor.extract.pdf.extract_pdf` (pypdf plus paragraphs, header,
  footer and hyphen clean-up, title and date), without enrichment.

Prints pages per second (one core) and the peak RSS of the process over the
RSS it had after its imports. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from latency import cpu_model  # noqa: E402  (bench/ is on sys.path when run as a script)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _pypdf(data: bytes) -> int:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data))
    runs: list[tuple[str, float]] = []
    for page in reader.pages:
        page.extract_text(visitor_text=lambda t, cm, tm, f, s: runs.append((t, tm[5])))
    return len(reader.pages)


def _pdfminer(data: bytes) -> int:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTTextContainer

    pages = 0
    lines: list[tuple[str, float]] = []
    for layout in extract_pages(io.BytesIO(data)):
        pages += 1
        for element in layout:
            if isinstance(element, LTTextContainer):
                lines.extend((line.get_text(), line.y0) for line in element)
    return pages


def _service(data: bytes) -> int:
    from monitor.extract.pdf import extract_pdf

    article = extract_pdf(data, url="https://example.org/s.pdf")
    assert article.text
    return _pypdf_pages(data)


def _pypdf_pages(data: bytes) -> int:
    import pypdf

    return len(pypdf.PdfReader(io.BytesIO(data)).pages)


def _child(library: str, path: str, docs: int) -> None:
    data = Path(path).read_bytes()
    run = {"pypdf": _pypdf, "pdfminer": _pdfminer, "service": _service}[library]
    run(data)  # warm-up: imports, font tables
    base = _status_kb("VmRSS")
    started = time.process_time()
    pages = sum(run(data) for _ in range(docs))
    cpu = time.process_time() - started
    # VmHWM, not ru_maxrss: the latter carries the parent's peak across fork and exec.
    peak = _status_kb("VmHWM")
    print(json.dumps({"pages": pages, "cpu": cpu, "base_mb": base / 1024, "peak_mb": peak / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--docs", type=int, default=10)
    parser.add_argument("--child", nargs=2, metavar=("LIBRARY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.docs)
        return
    from tests.sites.pdfs import statement_pdf

    data = statement_pdf(pages=args.pages)
    path = Path("/tmp") / f"bench-pdf-{args.pages}.pdf"
    path.write_bytes(data)
    print(f"cpu: {cpu_model()}; document: {args.pages} pages, {len(data) / 1024:.0f} KiB")
    for library in ("pypdf", "pdfminer", "service"):
        out = subprocess.run(
            [sys.executable, __file__, "--docs", str(args.docs), "--child", library, str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        rate = figures["pages"] / figures["cpu"]
        print(
            f"{library:9s} {rate:7.1f} pages/s"
            f"  ({figures['pages']} pages, {figures['cpu']:.2f} CPU s)"
            f"  RSS after imports {figures['base_mb']:.0f} MB, peak {figures['peak_mb']:.0f} MB"
            f" (+{figures['peak_mb'] - figures['base_mb']:.0f} MB)"
        )


if __name__ == "__main__":
    main()
