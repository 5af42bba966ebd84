"""Fields on the sphere: ``(time, lat, lon)`` variables in NetCDF (ERA5 2 m temperature) and GASP's
per-time-step ``.npz`` files, normalised with statistics of the training split.

NetCDF (read with xarray, ``decode_times=False`` so any calendar opens)
    ``root`` is a ``.nc`` / ``.nc4`` / ``.cdf`` file, or a folder of them (concatenated along time in
    name order), or a folder with ``train/`` and ``test/`` (optionally ``val/``) sub-folders of them.
    The variable is ``variable=...``, else ``t2m`` (ERA5), else the only variable with latitude and
    longitude dimensions. Latitude / longitude dimensions are recognised by name (``latitude``, ``lat``,
    ``nav_lat``, ``longitude``, ``lon``, ``nav_lon``, any case), by ``units`` (``degrees_north`` /
    ``degrees_east``), ``standard_name`` or ``axis`` (``Y`` / ``X``), so CF files such as Ferret's
    ``coads_climatology.cdf`` (dims ``COADSY``, ``COADSX``) work. The one remaining dimension (any name:
    ``time``, ``valid_time``, ``TIME``...) indexes the items; size-1 dimensions are dropped.

GASP ``.npz``
    ``root`` is a folder of ``*.npz`` files (or with ``train/``, ``test/`` sub-folders), one time step
    each, with ``latitude`` (n_lat,), ``longitude`` (n_lon,) and ``temperature`` (n_lat, n_lon) in Kelvin.

Normalisation (statistics always from the *training* split, ignoring NaN)
    ``normalize="minmax"`` (default; VaMoH's likelihoods need [0, 1]): ``(v - min) / (max - min)``,
    clipped to [0, 1] unless ``clip=False`` (test values may fall outside the training range).
    ``normalize="standard"``: ``(v - mean) / std``. ``normalize=None``: raw values.
    ``ds.stats`` is a plain dict (``{"kind": "minmax", "min": ..., "max": ...}``) to save beside a
    checkpoint and pass back with ``stats=...``; a val / test split without ``stats`` computes the
    training split's statistics itself. GASP's fixed ERA5 constants are ``GASP_ERA5_STATS``.

Missing values (NaN after xarray's fill-value decoding: land or sea masks) become unobserved points
(``mask`` False), never zeros. Items are ``PointSet.from_latlon``: coordinates are unit vectors on S^2
``(1, n_lat * n_lon, 3)``, values ``(1, n_lat * n_lon, 1)``, ``grid_shape = (n_lat, n_lon)``.

Example:
    >>> train = NetCDFFieldDataset("era5_t2m.nc", split="train")               # doctest: +SKIP
    >>> test = NetCDFFieldDataset("era5_t2m.nc", split="test", stats=train.stats)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from inrgen.data.datasets._common import DataSourceError, describe_found, split_indices
from inrgen.data.points import PointSet

__all__ = [
    "SphereFieldDataset",
    "NetCDFFieldDataset",
    "GASPNpzDataset",
    "compute_stats",
    "normalize_values",
    "denormalize_values",
    "find_latlon_dims",
    "check_netcdf",
    "check_npz",
    "GASP_ERA5_STATS",
    "NETCDF_SUFFIXES",
    "COADS_PATH",
]

NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf")
GASP_ERA5_STATS = {"kind": "minmax", "min": 202.66, "max": 320.93}
COADS_PATH = "/usr/share/ferret-vis/data/coads_climatology.cdf"
_LAT_NAMES = ("latitude", "lat", "lats", "nav_lat", "latitudes")
_LON_NAMES = ("longitude", "lon", "lons", "nav_lon", "longitudes", "long")


# --------------------------------------------------------------------------------------- statistics


def compute_stats(fields: np.ndarray, kind: str | None) -> dict[str, Any]:
    """Normalisation statistics of ``fields`` (NaN ignored) as a JSON-able dict."""
    if kind is None or kind == "none":
        return {"kind": "none"}
    finite = fields[np.isfinite(fields)]
    if finite.size == 0:
        raise DataSourceError("cannot compute normalisation statistics: every training value is NaN")
    if kind == "minmax":
        lo, hi = float(finite.min()), float(finite.max())
        return {"kind": "minmax", "min": lo, "max": hi}
    if kind == "standard":
        return {"kind": "standard", "mean": float(finite.mean()), "std": float(finite.std())}
    raise ValueError(f"normalize must be 'minmax', 'standard' or None, got {kind!r}")


def _check_stats(stats: Mapping[str, Any]) -> dict[str, Any]:
    kind = stats.get("kind")
    need = {"minmax": ("min", "max"), "standard": ("mean", "std"), "none": ()}.get(kind)  # type: ignore[arg-type]
    if need is None or any(k not in stats for k in need):
        raise ValueError(
            "stats must look like {'kind': 'minmax', 'min': a, 'max': b}, {'kind': 'standard', 'mean': m, "
            "'std': s} or {'kind': 'none'}, got " + repr(dict(stats))
        )
    return {k: (v if k == "kind" else float(v)) for k, v in stats.items()}


def normalize_values(x: np.ndarray, stats: Mapping[str, Any], clip: bool = True) -> np.ndarray:
    """Apply ``stats`` to raw values (NaN stays NaN)."""
    kind = stats["kind"]
    if kind == "minmax":
        span = stats["max"] - stats["min"]
        y = (x - stats["min"]) / (span if span > 0 else 1.0)
        return np.clip(y, 0.0, 1.0) if clip else y
    if kind == "standard":
        return (x - stats["mean"]) / (stats["std"] if stats["std"] > 0 else 1.0)
    return x


def denormalize_values(y: Tensor, stats: Mapping[str, Any]) -> Tensor:
    """Back to physical units (e.g. Kelvin) from normalised values."""
    kind = stats["kind"]
    if kind == "minmax":
        span = stats["max"] - stats["min"]
        return y * (span if span > 0 else 1.0) + stats["min"]
    if kind == "standard":
        return y * (stats["std"] if stats["std"] > 0 else 1.0) + stats["mean"]
    return y


# ------------------------------------------------------------------------------------------ base


class SphereFieldDataset(Dataset):
    """Scalar fields ``(N, n_lat, n_lon)`` on a lat/lon grid as sphere PointSets (normalised)."""

    modality = "sphere"
    channels = 1

    def __init__(
        self,
        fields: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        stats: Mapping[str, Any],
        clip: bool = True,
        name: str = "sphere",
    ) -> None:
        self.stats = _check_stats(stats)
        self.clip = clip
        self.name = name
        self.lat = np.array(lat, dtype=np.float64)
        self.lon = np.array(lon, dtype=np.float64)
        if np.abs(self.lat).max() > 90 + 1e-6:
            raise DataSourceError(
                f"{name}: latitudes must lie in [-90, 90] degrees, found {self.lat.min()}..{self.lat.max()}"
            )
        self.fields = normalize_values(np.asarray(fields, dtype=np.float64), self.stats, clip).astype(
            np.float32
        )
        self.grid_shape = (len(self.lat), len(self.lon))
        self._lat_t = torch.from_numpy(self.lat)
        self._lon_t = torch.from_numpy(self.lon)

    def __len__(self) -> int:
        return len(self.fields)

    def field(self, i: int) -> Tensor:
        """Item ``i`` as ``(1, n_lat, n_lon)`` normalised values, NaN where missing."""
        return torch.from_numpy(self.fields[i]).unsqueeze(0)

    def __getitem__(self, i: int) -> PointSet:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"item {i} out of range for a data set of {n} items")
        i = int(i) % n
        ps = PointSet.from_latlon(self.field(i).unsqueeze(0), self._lat_t, self._lon_t)
        ps.meta["index"] = torch.tensor([i])
        return ps

    def arrays(self, indices) -> Tensor:
        return torch.stack([self.field(int(i)) for i in indices])

    def normalization_state(self) -> dict[str, Any]:
        """What a checkpoint needs to undo the normalisation: ``{"stats": ..., "clip": ...}``."""
        return {"stats": dict(self.stats), "clip": self.clip}

    def denormalize(self, values: Tensor) -> Tensor:
        return denormalize_values(values, self.stats)


# ---------------------------------------------------------------------------------------- NetCDF


def _attr(var, key: str) -> str:
    return str(var.attrs.get(key, "")).strip().lower()


def find_latlon_dims(ds, var_name: str) -> tuple[str, str]:
    """Names of the latitude and longitude dimensions of ``ds[var_name]`` (see the module docstring)."""
    var = ds[var_name]
    lat = lon = None
    for d in var.dims:
        low = str(d).lower()
        coord = ds[d] if d in ds.variables else None
        units = _attr(coord, "units") if coord is not None else ""
        std = _attr(coord, "standard_name") if coord is not None else ""
        axis = _attr(coord, "axis") if coord is not None else ""
        if (
            low in _LAT_NAMES
            or units in ("degrees_north", "degree_north", "degrees_n", "degree_n")
            or std == "latitude"
            or axis == "y"
        ):
            lat = lat or d
        elif (
            low in _LON_NAMES
            or units in ("degrees_east", "degree_east", "degrees_e", "degree_e")
            or std == "longitude"
            or axis == "x"
        ):
            lon = lon or d
    if lat is None or lon is None:
        raise DataSourceError(
            f"variable {var_name!r} has dimensions {tuple(var.dims)}; expected a latitude and a longitude "
            "dimension (named latitude/lat and longitude/lon, or with units degrees_north / degrees_east)"
        )
    return str(lat), str(lon)


def _netcdf_files(p: Path) -> list[Path]:
    return sorted(
        f for f in p.iterdir() if f.suffix.lower() in NETCDF_SUFFIXES and not f.name.startswith(".")
    )


def _open(path: Path):
    import xarray as xr

    try:
        return xr.open_dataset(path, decode_times=False)
    except Exception as err:  # xarray / netCDF4 raise OSError, ValueError, RuntimeError...
        raise DataSourceError(
            f"{path}: expected a NetCDF file readable by xarray, but opening it failed with "
            f"{type(err).__name__}: {err}"
        ) from None


def _pick_variable(ds, path: Path, variable: str | None) -> str:
    names = [str(v) for v in ds.data_vars]
    if variable is not None:
        if variable not in ds.data_vars:
            raise DataSourceError(f"{path}: no variable {variable!r}; the file holds {names}")
        return variable
    if "t2m" in ds.data_vars:
        return "t2m"
    cands = []
    for v in names:
        try:
            find_latlon_dims(ds, v)
            cands.append(v)
        except DataSourceError:
            pass
    if len(cands) == 1:
        return cands[0]
    if not cands:
        dims = {v: tuple(ds[v].dims) for v in names}
        raise DataSourceError(
            f"{path}: NetCDF file without latitude/longitude: no variable has a latitude and a longitude "
            f"dimension (variables and dims: {dims}); expected e.g. t2m(time, latitude, longitude)"
        )
    raise DataSourceError(f"{path}: several fields {cands}; choose one with variable=...")


def _read_netcdf(path: Path, variable: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    ds = _open(path)
    with ds:
        var = _pick_variable(ds, path, variable)
        try:
            lat_d, lon_d = find_latlon_dims(ds, var)
        except DataSourceError as err:
            raise DataSourceError(f"{path}: NetCDF without latitude/longitude: {err}") from None
        da = ds[var]
        extra = [d for d in da.dims if d not in (lat_d, lon_d)]
        squeeze = [d for d in extra if da.sizes[d] == 1 and len(extra) > 1]
        da = da.isel({d: 0 for d in squeeze})
        extra = [d for d in extra if d not in squeeze]
        if len(extra) > 1:
            raise DataSourceError(
                f"{path}: variable {var!r} has dimensions {tuple(ds[var].dims)}; expected (time, lat, lon) "
                f"with one non-spatial dimension, found {extra}"
            )
        order = extra + [lat_d, lon_d]
        da = da.transpose(*order)
        vals = np.asarray(da.values, dtype=np.float64)
        if not extra:
            vals = vals[None]
        lat = np.asarray(
            ds[lat_d].values if lat_d in ds.variables else np.arange(da.sizes[lat_d]), np.float64
        )
        lon = np.asarray(
            ds[lon_d].values if lon_d in ds.variables else np.arange(da.sizes[lon_d]), np.float64
        )
    if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
        raise DataSourceError(f"{path}: the latitude / longitude coordinates contain NaN")
    return vals, lat, lon, var


def check_netcdf(root: str | os.PathLike | None, source: str = "era5") -> dict[str, list[Path]]:
    """``{split or "all": [files]}``: the NetCDF files below ``root``, or a clear error."""
    if root is None:
        raise DataSourceError(
            f"{source}: pass root=... (--root): a NetCDF file (.nc) with a (time, latitude, longitude) "
            "variable such as ERA5's t2m, or a folder of them"
        )
    p = Path(root).expanduser()
    if p.is_file():
        if p.suffix.lower() not in NETCDF_SUFFIXES:
            raise DataSourceError(f"{source}: {p} has suffix {p.suffix!r}; expected one of {NETCDF_SUFFIXES}")
        return {"all": [p]}
    if not p.is_dir():
        raise DataSourceError(f"{source}: expected a NetCDF file or folder at {p}, but {describe_found(p)}")
    subs = {
        d.name: _netcdf_files(d) for d in p.iterdir() if d.is_dir() and d.name in ("train", "val", "test")
    }
    if "train" in subs and "test" in subs:
        for k, files in subs.items():
            if not files:
                raise DataSourceError(f"{source}: no NetCDF files in {p / k}: {describe_found(p / k)}")
        return subs
    files = _netcdf_files(p)
    if not files:
        raise DataSourceError(
            f"{source}: expected NetCDF files ({', '.join(NETCDF_SUFFIXES)}) in {p}: {describe_found(p)}"
        )
    return {"all": files}


def _concat(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, str]], files: list[Path]):
    vals, lat, lon, var = parts[0]
    for (_, la, lo, _), f in zip(parts[1:], files[1:]):
        if (
            la.shape != lat.shape
            or lo.shape != lon.shape
            or not (np.allclose(la, lat) and np.allclose(lo, lon))
        ):
            raise DataSourceError(f"{f}: its latitude/longitude grid differs from that of {files[0]}")
    return np.concatenate([q[0] for q in parts]), lat, lon, var


class NetCDFFieldDataset(SphereFieldDataset):
    """A ``(time, lat, lon)`` NetCDF variable as normalised sphere PointSets (see the module docstring).

    Args:
        root: a NetCDF file, a folder of them, or a folder with train/test sub-folders.
        split: "train" | "val" | "test" | "all" (time steps split 80/10/10 with seed 0 unless the folder
            has split sub-folders).
        variable: the variable name (default: t2m, else the only lat/lon field).
        normalize: "minmax" | "standard" | None; stats: statistics to use instead of the training split's.
        clip: clip min-max values to [0, 1].
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        variable: str | None = None,
        normalize: str | None = "minmax",
        stats: Mapping[str, Any] | None = None,
        clip: bool = True,
        fractions: dict[str, float] | None = None,
        seed: int = 0,
        shuffle: bool = True,
        source: str = "era5",
    ) -> None:
        groups = check_netcdf(root, source)
        self.root = Path(root).expanduser()
        self._split_args = (fractions, seed, shuffle)

        def load(which: str):
            if "all" in groups:
                files = groups["all"]
                vals, lat, lon, var = _concat([_read_netcdf(f, variable) for f in files], files)
                return vals[split_indices(len(vals), which, fractions, seed, shuffle)], lat, lon, var
            names = ["train", "test"] + (["val"] if "val" in groups else []) if which == "all" else [which]
            if which == "val" and "val" not in groups:
                names = ["test"]
            files = [f for n in names for f in groups[n]]
            return _concat([_read_netcdf(f, variable) for f in files], files)

        vals, lat, lon, var = load(split)
        self.variable = var
        if stats is None:
            train_vals = vals if split == "train" else load("train")[0]
            stats = compute_stats(train_vals, normalize)
        super().__init__(vals, lat, lon, stats, clip, name=source)


# ------------------------------------------------------------------------------------------ GASP


def check_npz(root: str | os.PathLike | None, source: str = "era5-npz") -> dict[str, list[Path]]:
    """``{split or "all": [files]}`` of GASP ``.npz`` files, after checking the first file's keys."""
    if root is None:
        raise DataSourceError(
            f"{source}: pass root=... (--root): a folder of per-time-step .npz files with latitude, "
            "longitude and temperature (GASP's ERA5 format)"
        )
    p = Path(root).expanduser()
    if not p.is_dir():
        raise DataSourceError(f"{source}: expected a folder of .npz files at {p}, but {describe_found(p)}")

    def npz(d: Path) -> list[Path]:
        return sorted(f for f in d.iterdir() if f.suffix == ".npz" and not f.name.startswith("."))

    subs = {d.name: npz(d) for d in p.iterdir() if d.is_dir() and d.name in ("train", "val", "test")}
    groups = subs if ("train" in subs and "test" in subs) else {"all": npz(p)}
    for k, files in groups.items():
        if not files:
            where = p / k if k != "all" else p
            raise DataSourceError(
                f"{source}: expected .npz files in {where}, found none: {describe_found(where)}"
            )
    _read_npz(next(iter(groups.values()))[0])
    return groups


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = sorted(z.keys())
            missing = [k for k in ("latitude", "longitude", "temperature") if k not in z]
            if missing:
                raise DataSourceError(
                    f"{path}: expected arrays latitude, longitude and temperature (GASP's ERA5 .npz), "
                    f"found {keys}"
                )
            lat = np.asarray(z["latitude"], np.float64).reshape(-1)
            lon = np.asarray(z["longitude"], np.float64).reshape(-1)
            t = np.asarray(z["temperature"], np.float64)
    except (OSError, ValueError, EOFError) as err:
        raise DataSourceError(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None
    if t.shape != (len(lat), len(lon)):
        raise DataSourceError(
            f"{path}: temperature should be (n_lat, n_lon) = ({len(lat)}, {len(lon)}), found {t.shape}"
        )
    return t, lat, lon


class GASPNpzDataset(SphereFieldDataset):
    """GASP's ERA5 ``.npz`` time steps as normalised sphere PointSets (see the module docstring)."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        normalize: str | None = "minmax",
        stats: Mapping[str, Any] | None = None,
        clip: bool = True,
        fractions: dict[str, float] | None = None,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        groups = check_npz(root)

        def files_of(which: str) -> list[Path]:
            if "all" in groups:
                files = groups["all"]
                return [files[i] for i in split_indices(len(files), which, fractions, seed, shuffle)]
            if which == "all":
                return [f for k in ("train", "val", "test") for f in groups.get(k, [])]
            return groups.get(which) or groups["test"]

        def load(files: list[Path]):
            if not files:
                raise DataSourceError(f"era5-npz: split {split!r} of {root} is empty")
            parts = [_read_npz(f) for f in files]
            t0, lat, lon = parts[0]
            for (_, la, lo), f in zip(parts[1:], files[1:]):
                if (
                    la.shape != lat.shape
                    or lo.shape != lon.shape
                    or not (np.allclose(la, lat) and np.allclose(lo, lon))
                ):
                    raise DataSourceError(f"{f}: its latitude/longitude grid differs from that of {files[0]}")
            return np.stack([q[0] for q in parts]), lat, lon

        self.files = files_of(split)
        vals, lat, lon = load(self.files)
        if stats is None:
            train_vals = vals if split == "train" else load(files_of("train"))[0]
            stats = compute_stats(train_vals, normalize)
        super().__init__(vals, lat, lon, stats, clip, name="era5-npz")
