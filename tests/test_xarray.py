"""The xarray recipe of docs/python.md: a view's datasets wrapped, lazily, without extra code."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from h5vc import Repository


def test_xarray_over_a_view(tmp_path: Path) -> None:
    path = tmp_path / "clim.h5"
    temp = np.arange(48 * 5, dtype="f4").reshape(48, 5)
    with Repository.init(path, pointer=False) as repo:
        with repo.transaction("two days") as tx:
            tx.create_dataset("/time", data=np.arange(48, dtype="i8"), maxshape=(None,), chunks=(24,))
            tx.create_dataset("/temp", data=temp, maxshape=(None, 5), chunks=(24, 5))
            tx["/temp"].attrs["units"] = "K"
        repo.create_tag("v1")
        with repo.transaction("a third day, first hours corrected") as tx:
            tx["/time"].append(np.arange(48, 72, dtype="i8"))
            tx["/temp"].append(np.zeros((24, 5), dtype="f4"))
            tx["/temp"][0:6] = -1
    with Repository.open(path, mode="r") as repo:
        v1 = repo.at("v1")
        t = v1["/temp"]
        arr = xr.DataArray(da.from_array(t, chunks=t.chunks), dims=("time", "station"),
                           coords={"time": v1["/time"][()]}, attrs=dict(t.attrs), name="temp")
        assert arr.shape == (48, 5) and arr.attrs == {"units": "K"}
        daily = arr.groupby(arr.time // 24).mean().compute()
        want = temp.reshape(2, 24, 5).mean(axis=1)
        np.testing.assert_allclose(daily.values, want)
        assert float(arr.sel(time=3).sum()) == float(temp[3].sum())
