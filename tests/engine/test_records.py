"""engine.records.records gives the rows to_dict("records") gives: values and python types."""
import math

import numpy as np
import pandas as pd

from engine.records import records


def _typed(rows):
    return [{k: (type(v), "nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]


def test_records_equal_to_dict_records_on_typed_frames_object_columns_and_empty_ones():
    frame = pd.DataFrame({
        "s": pd.array(["a", None, "c"], dtype="str"), "f": [1.0, np.nan, 2.5],
        "i32": np.array([1, 2, 3], np.int32), "i64": np.array([4, 5, 6], np.int64), "b": [True, False, True],
        "obj": pd.Series([np.float64(1.5), "x", None], dtype=object)})
    typed = frame.drop(columns=["obj"])
    for f in (frame, typed, typed.iloc[1:], typed.iloc[:0], frame[[]]):
        assert _typed(records(f)) == _typed(f.to_dict("records"))
    assert type(records(frame)[0]["obj"]) is float        # to_dict's unboxing kept for object columns
    assert records(typed)[1]["s"] != records(typed)[1]["s"]   # missing text stays NaN
