"""The OpenAPI 3.1 description of the API, served at /api/v1/openapi.json.

Written by hand next to the routes it describes; a test checks that every API route is in it.
The limits and model names are filled from the running server's settings.
"""

from __future__ import annotations

from typing import Any

from pix2color import __version__
from pix2color.web.downloads import OUTPUT_FORMATS
from pix2color.web.schema import SCORES
from pix2color.web.settings import WebSettings
from pix2color.web.uploads import FORMAT_NAMES, pixel_limit


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _form(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """A required multipart/form-data request body with these fields."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}


def openapi_spec(settings: WebSettings, models: list[str]) -> dict[str, Any]:
    max_mb = settings.max_bytes / 2**20
    too_many = _error("Too many requests from this address; see the Retry-After header.")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pix2color",
            "version": __version__,
            "description": "Give black-and-white photographs back their colour, at their full "
            "resolution. Errors are JSON objects with a message that says what to do.",
        },
        "paths": {
            "/api/v1/colorize": {
                "post": {
                    "summary": "Colour one photo",
                    "description": "The model predicts colour at the working size; the result "
                    "has the photo's width, height and luminance (alpha kept in PNG and WebP; "
                    "JPEG is flattened onto white).",
                    "requestBody": _form(
                        ["image"],
                        {
                            "image": {
                                "type": "string",
                                "format": "binary",
                                "description": f"{FORMAT_NAMES} (still, not "
                                f"animated); at most {max_mb:.0f} MB and "
                                f"{pixel_limit(settings.max_pixels)}.",
                            },
                            "model": {"type": "string", "enum": models},
                            "size": {
                                "type": "integer",
                                "minimum": settings.min_size,
                                "maximum": settings.max_size,
                                "default": settings.default_size,
                                "description": "Working size: the long side the "
                                "model sees; smaller often gives bolder colour.",
                            },
                            "format": {
                                "type": "string",
                                "enum": list(OUTPUT_FORMATS),
                                "default": "png",
                            },
                            "points": {
                                "type": "string",
                                "contentMediaType": "application/json",
                                "contentSchema": {"$ref": "#/components/schemas/Points"},
                                "description": "Colour points, as JSON text: "
                                '{"points": [{"x": 120, "y": 80, "color": '
                                '"#2050c0", "radius": 3}]} (the file `pix2color '
                                'colorize --hints` reads). Each says "this spot '
                                'is this colour"; the colour spreads over the '
                                "object the spot sits on and the rest keeps the "
                                "automatic colour. x, y in the photo's own pixels "
                                "(upright, after EXIF rotation; (0, 0) is the "
                                f"top-left pixel); at most {settings.max_points} "
                                "points. Only the colour's chroma is used.",
                            },
                            "reference": {
                                "type": "string",
                                "format": "binary",
                                "description": "A colour photo whose palette the "
                                "result takes (a photo of the same place or era, a "
                                "colour portrait of the same person): its colours "
                                "per lightness band, never its content. Any model; "
                                "the same formats and limits as image. Colour "
                                "points go on top of it. A reference that cannot "
                                "be used is refused naming this field, e.g. "
                                "`reference: ... has no colour ...; give a colour "
                                "photo` (400); a file that is not a photo 415, too "
                                "many pixels 413.",
                            },
                        },
                    ),
                    "responses": {
                        "200": {
                            "description": "The coloured photo, with headers X-Job-Id and "
                            "X-Rating-Token (to rate it), X-Model and X-Working-Size.",
                            "headers": {
                                "X-Job-Id": {"schema": {"type": "string"}},
                                "X-Rating-Token": {
                                    "description": "The secret that rates this job (POST "
                                    "/api/v1/ratings, field token); only its holder can rate "
                                    "the job. Keep it private.",
                                    "schema": {"type": "string"},
                                },
                                "X-Model": {"schema": {"type": "string"}},
                                "X-Working-Size": {"schema": {"type": "integer"}},
                                "X-Colour-Points": {
                                    "description": "How many colour points were applied.",
                                    "schema": {"type": "integer"},
                                },
                                "X-Reference-Photo": {
                                    "description": "yes when a reference photo's palette was "
                                    "applied, else no.",
                                    "schema": {"type": "string", "enum": ["yes", "no"]},
                                },
                            },
                            "content": {
                                "image/png": {"schema": {"type": "string", "format": "binary"}},
                                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                                "image/webp": {"schema": {"type": "string", "format": "binary"}},
                            },
                        },
                        "400": _error(
                            "No image, a damaged image, or a bad parameter; colour points "
                            "that cannot be used name the field, e.g. `points: points[2].color:"
                            " '#zz0000' is not a colour; use '#rrggbb'` or `points: points[0]: "
                            "(900, 10) is outside the photo (640x480: ...)`; a reference photo "
                            "that cannot be used names its field too: `reference: ...`."
                        ),
                        "413": _error("The file or its pixel count is over the limit."),
                        "415": _error("Not a supported photo (SVG, HTML, animated, ...)."),
                        "429": too_many,
                        "503": _error("Every inference slot is busy; retry after Retry-After."),
                    },
                }
            },
            "/api/v1/suggest": {
                "post": {
                    "summary": "The colours most likely at one spot of a photo",
                    "description": "For choosing a colour point's colour: the few distinct "
                    "colours (from ab bins more than 10 apart) that the server's suggestions "
                    "model, a colour-class network, finds most likely around the spot, most likely "
                    "first. The model only suggests; it never colours a photo. The page asks "
                    "the same of a photo it keeps: GET /jobs/{id}/suggest?x=..&y=.. (its own "
                    "session and CSRF token only).",
                    "requestBody": _form(
                        ["image", "x", "y"],
                        {
                            "image": {
                                "type": "string",
                                "format": "binary",
                                "description": f"As for colorize: {FORMAT_NAMES}; "
                                f"at most {max_mb:.0f} MB and "
                                f"{pixel_limit(settings.max_pixels)}.",
                            },
                            "x": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "Pixels from the left of the "
                                "upright photo (after EXIF rotation).",
                            },
                            "y": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "Pixels from the top.",
                            },
                            "k": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 8,
                                "default": 3,
                                "description": "How many colours at most (fewer "
                                "when the model sees fewer distinct ones).",
                            },
                        },
                    ),
                    "responses": {
                        "200": {
                            "description": "The suggestions.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Suggestions"}
                                }
                            },
                        },
                        "400": _error(
                            "No image, a damaged one, or a bad spot, naming the field: `x: 900 "
                            "is outside 0 to 639 (pixels from the left of the 640x480 photo)`."
                        ),
                        "413": _error("The file or its pixel count is over the limit."),
                        "415": _error("Not a supported photo (SVG, HTML, animated, ...)."),
                        "429": too_many,
                        "503": _error(
                            "Every inference slot is busy (retry after Retry-After), or this "
                            "server has no suggestions model."
                        ),
                    },
                }
            },
            "/api/v1/models": {
                "get": {
                    "summary": "The models this server colours with, and its limits",
                    "responses": {
                        "200": {
                            "description": "Models, working sizes, formats and limits.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Models"}
                                }
                            },
                        }
                    },
                }
            },
            "/api/v1/ratings": {
                "post": {
                    "summary": "Record a person's judgement of a job's results",
                    "description": f"A {SCORES[0]}-{SCORES[-1]} score for one result and/or "
                    "which result was best, for a job this caller coloured: send the job's "
                    "X-Job-Id and X-Rating-Token from POST /api/v1/colorize. One rating per "
                    "result: rating it again replaces the earlier answer, never adds one. The "
                    "caller chose the model, so API ratings are counted as named ratings, apart "
                    "from the page's blind ones. At most "
                    f"{settings.ratings_per_minute} ratings a minute and "
                    f"{settings.ratings_per_hour} an hour per client address (429 above).",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Rating"}}
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "Saved (committed before this answer).",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "400": _error("A missing or invalid field."),
                        "403": _error("The token is missing or is not this job's."),
                        "404": _error("No such job, or it has expired."),
                        "415": _error("The body is not JSON."),
                        "429": too_many,
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This description",
                    "responses": {"200": {"description": "OpenAPI 3.1 document."}},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Readiness: models loaded and database reachable",
                    "responses": {
                        "200": {"description": "Ready."},
                        "503": {"description": "The database does not answer."},
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "status"],
                    "properties": {
                        "error": {
                            "type": "string",
                            "description": "What was wrong, and what to do.",
                        },
                        "status": {"type": "integer"},
                    },
                },
                "Rating": {
                    "type": "object",
                    "required": ["job", "token"],
                    "additionalProperties": False,
                    "properties": {
                        "job": {"type": "string", "description": "X-Job-Id of a colouring."},
                        "token": {
                            "type": "string",
                            "description": "X-Rating-Token of the same colouring.",
                        },
                        "model": {
                            "type": "string",
                            "description": "The rated result: model name or label (A, B...).",
                        },
                        "score": {
                            "type": "integer",
                            "minimum": SCORES[0],
                            "maximum": SCORES[-1],
                        },
                        "best": {
                            "type": "string",
                            "description": "The result picked as best: model name or label.",
                        },
                    },
                },
                "Points": {
                    "type": "object",
                    "required": ["points"],
                    "additionalProperties": False,
                    "properties": {
                        "points": {
                            "type": "array",
                            "maxItems": settings.max_points,
                            "items": {
                                "type": "object",
                                "required": ["x", "y", "color"],
                                "additionalProperties": False,
                                "properties": {
                                    "x": {"type": "number", "minimum": 0},
                                    "y": {"type": "number", "minimum": 0},
                                    "color": {
                                        "type": "string",
                                        "description": '"#rrggbb", "#rgb" or "rgb(r, g, b)".',
                                    },
                                    "radius": {
                                        "type": "number",
                                        "minimum": 0,
                                        "maximum": 1000,
                                        "default": 0,
                                        "description": "The spot's size in photo pixels.",
                                    },
                                },
                            },
                        }
                    },
                },
                "Suggestions": {
                    "type": "object",
                    "required": ["x", "y", "suggestions"],
                    "properties": {
                        "x": {"type": "integer"},
                        "y": {"type": "integer"},
                        "width": {"type": "integer", "description": "The upright photo's."},
                        "height": {"type": "integer"},
                        "model": {"type": "string", "description": "The suggestions model."},
                        "suggestions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["color", "ab", "probability"],
                                "properties": {
                                    "color": {
                                        "type": "string",
                                        "description": '"#rrggbb" at the spot\'s lightness '
                                        "(held within L 45-75 so that its hue shows): use it "
                                        "as a colour point's colour.",
                                    },
                                    "ab": {
                                        "type": "array",
                                        "items": {"type": "number"},
                                        "description": "CIELAB a, b of the colour.",
                                    },
                                    "probability": {
                                        "type": "number",
                                        "description": "The model's probability of colours "
                                        "within 10 ab units of it, around the spot (0-1).",
                                    },
                                },
                            },
                        },
                    },
                },
                "Models": {
                    "type": "object",
                    "properties": {
                        "models": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "default": {"type": "boolean"},
                                    "parameters": {"type": ["integer", "null"]},
                                },
                            },
                        },
                        "default_model": {"type": "string"},
                        "size": {"type": "object"},
                        "formats": {"type": "array", "items": {"type": "string"}},
                        "limits": {"type": "object"},
                    },
                },
            }
        },
    }
