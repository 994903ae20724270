"""PDF statements and hostile PDFs, generated here: the repository holds no third-party PDF.

Well-formed documents are written with fpdf2 (a test dependency), the way an
office suite exports a communiqué: a running header, a page number in the
footer, paragraphs set with a gap between them, words hyphenated at line ends.
Hostile ones are written byte by byte (`raw_pdf`), since no writer produces a
decompression bomb or an xref loop on purpose.

    statement_pdf(...)        -> bytes   the multi-page statement with header and page numbers
    scanned_pdf()             -> bytes   one page holding only an image (no text layer)
    encrypted_pdf()           -> bytes   a statement behind a user password
    bomb_pdf(), nested_pdf(), xref_loop_pdf(), many_pages_pdf(n)  -> bytes
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence

__all__ = [
    "PARAGRAPHS",
    "QUOTE_PARAGRAPHS",
    "bomb_pdf",
    "encrypted_pdf",
    "many_pages_pdf",
    "nested_pdf",
    "raw_pdf",
    "scanned_pdf",
    "statement_pdf",
    "xref_loop_pdf",
]

HEADER = "Central Bank of Examplia - Monetary Policy Statement"
PARAGRAPHS: tuple[str, ...] = (
    "At its meeting today, the Monetary Policy Committee decided to keep the policy rate "
    "unchanged at 4.25 per cent. Inflation has declined broadly as expected, and the "
    "committee judges that the current stance remains appropriate to bring inflation back "
    "to the two per cent target in the medium term.",
    "Economic activity grew moderately in the third quarter. Household consumption was "
    "supported by rising real incomes, while business investment remained subdued amid "
    "elevated uncertainty about global trade and financing conditions.",
    "The labour market has continued to loosen gradually. Vacancies have fallen towards "
    "their pre-pandemic level and wage growth, although still strong, is expected to "
    "moderate over the coming quarters as inflation expectations settle.",
    "The committee will continue to monitor closely the indications of persistent "
    "inflationary pressures and resilience in the economy as a whole, including a range of "
    "measures of the underlying tightness of labour market conditions.",
    "Risks to the outlook are balanced. Energy prices could rise again if geopolitical "
    "tensions escalate, while weaker external demand would weigh on exports and on the "
    "domestic recovery through lower confidence.",
    "The committee stands ready to adjust the stance of monetary policy as warranted by "
    "economic data to return inflation to the target sustainably.",
)
QUOTE_PARAGRAPHS: tuple[str, ...] = (
    'Governor Maria Lindqvist said: "Inflation is falling, but the job is not yet done. '
    'We will keep policy restrictive for as long as needed."',
    "The decision was taken by a majority of seven to two members of the committee.",
    '"We see the risks as broadly balanced," Deputy Governor Tomas Berg told reporters '
    "after the meeting.",
)


def statement_pdf(
    paragraphs: Sequence[str] = PARAGRAPHS,
    *,
    title: str | None = "Monetary Policy Statement, 4 November 2026",
    meta_title: str | None = "Monetary Policy Statement",
    heading: str | None = "Monetary Policy Statement",
    date_line: str | None = "4 November 2026",
    header: str | None = HEADER,
    page_numbers: bool = True,
    pages: int = 2,
    hyphenate: str | None = "macroeco-nomic",
) -> bytes:
    """A statement of `pages` pages (its paragraphs repeated to fill them), fpdf2-made.

    `hyphenate`: a word written with a hyphen at a line's end ("macroeco-" /
    "nomic"), which extraction must join. `title` is the document's metadata title.
    """
    from fpdf import FPDF

    class _Doc(FPDF):
        def header(self) -> None:
            if header:
                self.set_font("Helvetica", size=8)
                self.cell(0, 6, header, align="C")
                self.ln(10)

        def footer(self) -> None:
            if page_numbers:
                self.set_y(-15)
                self.set_font("Helvetica", size=8)
                self.cell(0, 10, f"Page {self.page_no()}", align="C")

    pdf = _Doc(format="A4")
    pdf.set_auto_page_break(auto=True, margin=20)
    if meta_title:
        pdf.set_title(meta_title)
    pdf.set_creation_date(dt.datetime(2026, 11, 4, 9, 30, tzinfo=dt.UTC))
    pdf.add_page()
    if heading:
        pdf.set_font("Helvetica", style="B", size=16)
        pdf.multi_cell(0, 9, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    if date_line:
        pdf.set_font("Helvetica", size=10)
        pdf.multi_cell(0, 6, date_line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
    pdf.set_font("Helvetica", size=11)
    if hyphenate:
        head, tail = hyphenate.split("-", 1)
        pdf.multi_cell(0, 6, f"The committee discussed the {head}-", new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 6, f"{tail} outlook in detail.", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
    written = 0
    while True:
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
            written += 1
        if pdf.page_no() >= pages or written > 400:
            break
    del title  # the visible heading is `heading`; kept for callers' readability
    return bytes(pdf.output())


def encrypted_pdf() -> bytes:
    """A short statement that opens only with the user password "secret"."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, PARAGRAPHS[0], new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def scanned_pdf() -> bytes:
    """A page that is one image, as a scanner makes it: no text layer at all."""
    import io

    from fpdf import FPDF
    from PIL import Image, ImageDraw

    image = Image.new("L", (600, 800), 255)
    draw = ImageDraw.Draw(image)
    for row in range(40, 760, 24):  # lines of "print" the way a scan shows them
        draw.rectangle((40, row, 560, row + 8), fill=40)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(io.BytesIO(buffer.getvalue()), x=0, y=0, w=210)
    return bytes(pdf.output())


# --- hostile PDFs, byte by byte ------------------------------------------------------


def raw_pdf(objects: Sequence[bytes], *, root: int = 1, trailer_extra: bytes = b"") -> bytes:
    """A PDF of `objects` (object i+1 is objects[i]), with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R %s>>\n" % (len(objects) + 1, root, trailer_extra)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _page_objects(content: bytes, *, filters: bytes = b"") -> list[bytes]:
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d %s>>\nstream\n" % (len(content), filters) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]


def bomb_pdf(expanded: int = 256 << 20) -> bytes:
    """A page whose content stream inflates from about a megabyte to `expanded` bytes."""
    compressor = zlib.compressobj(1)
    chunk = b" " * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(expanded // len(chunk))]
    parts.append(compressor.flush())
    return raw_pdf(_page_objects(b"".join(parts), filters=b"/Filter /FlateDecode "))


def nested_pdf(depth: int = 200_000) -> bytes:
    """A page whose resources hold an array nested `depth` deep: a recursive parser's end."""
    objects = _page_objects(b"BT /F1 12 Tf 72 700 Td (Nested) Tj ET")
    objects[2] = objects[2].replace(b" >> >>", b" >> /Deep " + b"[" * depth + b"]" * depth + b" >>")
    return raw_pdf(objects)


def xref_loop_pdf() -> bytes:
    """A trailer whose /Prev points at its own xref table, and a page tree that is its own kid."""
    objects = _page_objects(b"BT /F1 12 Tf 72 700 Td (Loop) Tj ET")
    objects[1] = b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>"
    plain = raw_pdf(objects)
    xref = int(plain.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    return raw_pdf(objects, trailer_extra=b"/Prev %d " % xref)


def many_pages_pdf(pages: int = 1_000_000) -> bytes:
    """A page tree that claims `pages` pages by naming one page object again and again."""
    content = b"BT /F1 12 Tf 72 700 Td (The same page once more.) Tj ET"
    objects = _page_objects(content)
    kids = b" ".join([b"3 0 R"] * pages)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)
    return raw_pdf(objects)
