"""Form bodies whose refusal says which limit they passed.

Werkzeug refuses a multipart form with one bare 413 for three different limits: the whole
request (MAX_CONTENT_LENGTH, 50 MB), one field that is not a file (MAX_FORM_MEMORY_SIZE, 500 KB:
such a field is held in memory) and the number of parts (MAX_FORM_PARTS). A person who sent
4 MB of colour points would read "larger than 50 MB" and be none the wiser. `FormRequest` (the
app's request class) watches the body as Werkzeug's parser reads it (the parts begun, the last
one's name), so that the refusal, a FormTooLarge, names the field and the limit it passed.
"""

from __future__ import annotations

import re
from typing import IO, Any

from flask import Request, current_app
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from pix2color.web.points import FIELD, FIELD_CHARS

_NAME = re.compile(rb'name="([^"\r\n]{0,100})"')
_TAIL = 2048  # bytes kept from one read to the next: a marker or headers may span two reads


class FormTooLarge(RequestEntityTooLarge):
    """A form over one of its own limits (not the whole request's); the description says which."""


class _Watched:
    """A request body read through: counts the parts begun and keeps the last one's name."""

    def __init__(self, stream: IO[bytes], boundary: bytes) -> None:
        self._stream, self._marker = stream, b"--" + boundary
        self._tail = b""
        self.parts, self.name = 0, None
        self.over_request = False  # the stream itself passed MAX_CONTENT_LENGTH (chunked body)

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._stream.read(n)
        except RequestEntityTooLarge:
            self.over_request = True
            raise
        window = self._tail + data
        self.parts += window.count(self._marker) - self._tail.count(self._marker)
        last = window.rfind(self._marker)
        if last >= 0 and (m := _NAME.search(window, last, last + 1024)):
            self.name = m.group(1).decode("utf-8", "replace")
        self._tail = window[-_TAIL:]
        return data


class FormParser(FormDataParser):
    """Werkzeug's form parser; its multipart refusals become FormTooLarge naming the limit."""

    def _parse_multipart(
        self, stream: IO[bytes], mimetype: str, content_length: int | None, options: dict
    ) -> Any:
        watched = _Watched(stream, options.get("boundary", "").encode("ascii", "replace"))
        try:
            return super()._parse_multipart(
                watched,  # type: ignore[arg-type]
                mimetype,
                content_length,
                options,
            )
        except RequestEntityTooLarge:
            if watched.over_request:
                raise  # the whole request's limit: answered as such
            raise FormTooLarge(self._why(watched)) from None

    def _why(self, watched: _Watched) -> str:
        parts = self.max_form_parts
        if parts is not None and watched.parts > parts + 1:  # +1: the closing marker
            return (
                f"the form has more than {parts} parts, this server's limit; send one photo "
                "with its few fields"
            )
        limit = f"{(self.max_form_memory_size or 0) / 1000:.0f} KB"
        name = watched.name or "?"
        if name == FIELD:
            most = current_app.extensions["pix2color.settings"].max_points
            return (
                f"{FIELD}: the field is larger than {limit}, this server's limit for a form field "
                f"that is not a file; send at most {most} colour points per photo, in at most "
                f"{FIELD_CHARS} characters of JSON"
            )
        return (
            f"{name[:60]}: the field is larger than {limit}, this server's limit for a form "
            "field that is not a file; send a photo as a file (a form field with a file name)"
        )


class FormRequest(Request):
    """Flask's request, with the form parser above."""

    form_data_parser_class = FormParser
