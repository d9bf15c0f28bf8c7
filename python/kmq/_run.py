"""kmq.read_run: the results of `kmq run` / `kmq quantize` as rows."""
import json
import os

_K_FIELDS = ("k", "k_effective", "inertia", "mse", "mse_output", "psnr_db", "iterations",
             "converged")


def _rows_of_image(out, image):
    base = {
        "job": image.get("job"),
        "image": image.get("rel"),
        "path": image.get("path"),
        "status": image.get("status"),
        "error": (image.get("error") or {}).get("code"),
        "pixels": image.get("pixels"),
    }
    summary = None
    if image.get("status") == "ok" and image.get("dir") is not None:
        path = os.path.join(out, image["dir"], "summary.json")
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
    if not summary or not summary.get("results"):
        return [dict(base, **{name: None for name in _K_FIELDS}, restarts=None, palette=None,
                     summary=None)]
    rows = []
    for r in summary["results"]:
        row = dict(base, **{name: r.get(name) for name in _K_FIELDS})
        row["restarts"] = (r.get("restarts") or {}).get("count")
        row["palette"] = [e["hex"] for e in r.get("palette", [])]
        row["summary"] = os.path.join(image["dir"], "summary.json")
        rows.append(row)
    return rows


def read_run(out, as_frame=None):
    """The results under output root `out` (its run.json and every image's
    summary.json): one row per image and k, a dict with job, image (its path
    under the input root), path, status ("ok", "error", "pending", "stale"),
    error (the code, or None), pixels, k, k_effective, inertia, mse,
    mse_output, psnr_db, iterations, converged, restarts (count), palette
    (hex colours, palette order) and summary (its path under out). An image
    that is not done has one row with k and the fit's fields None.

    as_frame: None gives a pandas DataFrame when pandas can be imported and
    a list of dicts otherwise; True a DataFrame (ImportError without
    pandas); False the list.
    """
    run_json = os.path.join(os.fspath(out), "run.json")
    try:
        with open(run_json, encoding="utf-8") as f:
            run = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{run_json}: no run.json (is {out} the output root of a kmq "
                                "run? `kmq report OUT` rebuilds it)") from None
    rows = []
    for image in run.get("images", []):
        rows.extend(_rows_of_image(os.fspath(out), image))
    if as_frame is False:
        return rows
    try:
        import pandas
    except ImportError:
        if as_frame:
            raise
        return rows
    return pandas.DataFrame(rows)
