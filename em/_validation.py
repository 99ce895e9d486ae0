"""Input checks at the boundary of :mod:`songmix.em`.

Every public entry point calls these before touching the maths, so the numerical code below
can assume a finite, 2-D, float64 array and valid options. Messages say what to do next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_METHODS = ("kmeans++", "random")
# Covariance matrices may differ from their transpose by this much relative to the scale of the
# two variables (sqrt(C_ii C_jj)): rounding in how they were computed or stored, not asymmetry.
SYMMETRY_TOLERANCE = 1e-8


def owned_read_only(values) -> np.ndarray:
    """A read-only float64 copy of ``values``, for the attributes of an immutable result.

    A copy, so that the result neither shares memory with the caller's array nor changes that
    array's flags (setting ``writeable = False`` on the caller's own array would make it
    read-only for the caller too).
    """
    owned = np.array(values, dtype=np.float64)
    owned.flags.writeable = False
    return owned


def feature_names_of(X, feature_names: Sequence[str] | None, n_features: int) -> tuple[str, ...]:
    """Names for the columns of ``X``: given names, a DataFrame's columns, or ``x0, x1, ...``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        A DataFrame contributes its ``columns`` when ``feature_names`` is None.
    feature_names : sequence of str or None
    n_features : int

    Returns
    -------
    names : tuple of str, length n_features
    """
    if feature_names is None:
        columns = getattr(X, "columns", None)
        feature_names = [str(c) for c in columns] if columns is not None else None
    if feature_names is None:
        return tuple(f"x{j}" for j in range(n_features))
    names = tuple(str(name) for name in feature_names)
    if len(names) != n_features:
        raise ValueError(
            f"feature_names has {len(names)} names but X has {n_features} columns; "
            "pass one name per column."
        )
    return names


def check_samples(X, *, feature_names: Sequence[str] | None = None) -> np.ndarray:
    """Return ``X`` as a finite, C-contiguous float64 array of shape (n_samples, n_features).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    feature_names : sequence of str or None
        Used to name the offending columns in error messages.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64

    Raises
    ------
    ValueError
        If ``X`` is not numeric, not 2-D, empty, or holds NaN or infinite values.
    """
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"X must hold numbers only; converting it to float64 failed ({error}). "
            "Drop text columns or encode them as numbers first."
        ) from None
    if array.ndim != 2:
        hint = (
            " Use X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single sample."
            if array.ndim == 1
            else ""
        )
        raise ValueError(
            f"X must be 2-D with shape (n_samples, n_features); got {array.ndim}-D array of "
            f"shape {array.shape}.{hint}"
        )
    n_samples, n_features = array.shape
    if n_samples == 0 or n_features == 0:
        raise ValueError(f"X is empty (shape {array.shape}); it needs at least one row and column.")
    bad = ~np.isfinite(array)
    if bad.any():
        names = feature_names_of(X, feature_names, n_features)
        per_column = bad.sum(axis=0)
        described = ", ".join(
            f"{names[j]!r} ({count} row{'s' if count != 1 else ''})"
            for j, count in enumerate(per_column)
            if count
        )
        n_rows = int(bad.any(axis=1).sum())
        raise ValueError(
            f"X contains NaN or infinite values in {int((per_column > 0).sum())} column(s): "
            f"{described}; {n_rows} of {n_samples} rows affected. "
            "Drop or impute those rows before fitting."
        )
    return np.ascontiguousarray(array)


def check_fit_options(
    *,
    n_components: int,
    n_samples: int,
    covariance_type: str,
    n_init: int,
    init: str,
    tol: float,
    max_iter: int,
    reg_covar: float,
) -> None:
    """Raise ``ValueError`` for an option outside its domain.

    Parameters
    ----------
    n_components, n_samples, n_init, max_iter : int
    covariance_type, init : str
    tol, reg_covar : float
    """
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
        raise ValueError(f"n_components must be an integer, got {n_components!r}.")
    if n_components < 1:
        raise ValueError(f"n_components must be at least 1, got {n_components}.")
    if n_samples < n_components:
        raise ValueError(
            f"X has {n_samples} samples but n_components={n_components}: a mixture needs at "
            "least as many samples as components. Use fewer components or more data."
        )
    _check_covariance_type(covariance_type)
    if init not in INIT_METHODS:
        raise ValueError(f"Unknown init {init!r}; use one of {', '.join(INIT_METHODS)}.")
    if n_init < 1:
        raise ValueError(f"n_init must be at least 1, got {n_init}.")
    if max_iter < 0:
        raise ValueError(f"max_iter must be 0 or more, got {max_iter}.")
    if not tol >= 0:
        raise ValueError(f"tol must be 0 or more, got {tol}.")
    if not reg_covar >= 0:
        raise ValueError(f"reg_covar must be 0 or more, got {reg_covar}.")


def _check_covariance_type(covariance_type: str) -> None:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"Unknown covariance_type {covariance_type!r}; use one of {', '.join(COVARIANCE_TYPES)}."
        )


def covariance_shape(covariance_type: str, n_components: int, n_features: int) -> tuple[int, ...]:
    """Shape of the covariances of one fit, as in scikit-learn.

    Returns
    -------
    shape : tuple
        full (k, d, d), tied (d, d), diag (k, d), spherical (k,).
    """
    return {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]


def _as_finite_array(value, label: str, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{label} must have shape {shape}, got {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{label} contains NaN or infinite values.")
    return array


def check_initial(
    initial: Mapping,
    *,
    n_samples: int,
    n_features: int,
    n_components: int,
    covariance_type: str,
) -> dict[str, np.ndarray]:
    """Validate explicit starting values for EM.

    Parameters
    ----------
    initial : mapping
        Either ``{"weights": (k,), "means": (k, d), "covariances": shaped per type}`` or
        ``{"responsibilities": (n_samples, k)}``.
    n_samples, n_features, n_components : int
    covariance_type : str

    Returns
    -------
    initial : dict of str to ndarray
        The same keys, as float64 arrays (see :func:`check_mixture_parameters`).
    """
    keys = set(initial)
    parameter_keys = {"weights", "means", "covariances"}
    if keys == {"responsibilities"}:
        resp = _as_finite_array(
            initial["responsibilities"], "initial['responsibilities']", (n_samples, n_components)
        )
        if (resp < 0).any() or not np.allclose(resp.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError(
                "initial['responsibilities'] must be non-negative with rows summing to 1."
            )
        return {"responsibilities": resp}
    if keys != parameter_keys:
        raise ValueError(
            "initial must have exactly the keys {'weights', 'means', 'covariances'} or "
            f"{{'responsibilities'}}; got {sorted(keys)}."
        )
    return check_mixture_parameters(
        initial["weights"],
        initial["means"],
        initial["covariances"],
        n_components=n_components,
        n_features=n_features,
        covariance_type=covariance_type,
        label="initial[{!r}]",
    )


def check_mixture_parameters(
    weights,
    means,
    covariances,
    *,
    n_components: int,
    n_features: int,
    covariance_type: str,
    label: str = "{}",
) -> dict[str, np.ndarray]:
    """Validate the parameters of one mixture (an explicit start or known parameters).

    Parameters
    ----------
    weights : array-like of shape (k,)
        Positive, summing to 1.
    means : array-like of shape (k, d)
    covariances : array-like, shaped per covariance type
        Full and tied: symmetric (see :data:`SYMMETRY_TOLERANCE`) and positive definite;
        diag and spherical: positive.
    n_components, n_features : int
    covariance_type : str
    label : str
        Format string naming an argument in messages: ``"initial[{!r}]"`` gives
        ``initial['weights']``.

    Returns
    -------
    parameters : dict of str to ndarray
        ``weights``, ``means`` and ``covariances`` as float64 arrays; covariance matrices are
        ``(C + C') / 2``, exactly symmetric, so that densities and the stored covariances agree.
    """
    _check_covariance_type(covariance_type)
    weights = _as_finite_array(weights, label.format("weights"), (n_components,))
    if (weights <= 0).any() or abs(weights.sum() - 1.0) > 1e-6:
        raise ValueError(f"{label.format('weights')} must be positive and sum to 1.")
    means = _as_finite_array(means, label.format("means"), (n_components, n_features))
    covariances = _as_finite_array(
        covariances,
        label.format("covariances"),
        covariance_shape(covariance_type, n_components, n_features),
    )
    covariances = _checked_covariances(covariances, covariance_type, label.format("covariances"))
    return {"weights": weights, "means": means, "covariances": covariances}


def _checked_covariances(covariances: np.ndarray, covariance_type: str, label: str) -> np.ndarray:
    """Symmetric positive definite matrices (full, tied) or positive variances (diag, spherical).

    Returns the matrices symmetrised, ``(C + C') / 2`` (a new array), else ``covariances``.
    """
    if covariance_type in ("diag", "spherical"):
        bad = np.argwhere(covariances <= 0)
        if len(bad):
            index = tuple(bad[0].tolist())
            raise ValueError(
                f"{label}[{', '.join(map(str, index))}] is {covariances[index]:g}; variances must "
                "be positive."
            )
        return covariances
    matrices = covariances.reshape((-1,) + covariances.shape[-2:])
    variances = np.diagonal(matrices, axis1=-2, axis2=-1)
    if (variances > 0).all():
        # |C_ij - C_ji| relative to sqrt(C_ii C_jj), which bounds |C_ij| in a covariance matrix.
        scale = np.sqrt(variances[:, :, None] * variances[:, None, :])
        asymmetry = np.abs(matrices - np.swapaxes(matrices, -1, -2)) / scale
        if asymmetry.max() > SYMMETRY_TOLERANCE:
            component, i, j = np.unravel_index(np.argmax(asymmetry), asymmetry.shape)
            raise ValueError(
                f"{label} is not symmetric: {_matrix_name(component, covariance_type)} holds "
                f"{matrices[component, i, j]:g} at ({i}, {j}) but {matrices[component, j, i]:g} at "
                f"({j}, {i}). A covariance matrix equals its transpose; if the difference is "
                "rounding, pass (C + C.T) / 2."
            )
        matrices = (matrices + np.swapaxes(matrices, -1, -2)) / 2
    for component, matrix in enumerate(matrices):
        if not _positive_definite(matrix):
            raise ValueError(
                f"{label}: {_matrix_name(component, covariance_type)} is not positive definite "
                "(it has an eigenvalue <= 0). A covariance estimated from fewer samples than "
                "features is singular: add a small multiple of the identity."
            )
    return matrices.reshape(covariances.shape)


def _matrix_name(component: int, covariance_type: str) -> str:
    return "the tied matrix" if covariance_type == "tied" else f"the matrix of component {component}"


def _positive_definite(matrix: np.ndarray) -> bool:
    """Whether ``matrix`` has a Cholesky factor, the test the EM's precision factors pass."""
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return True


def check_n_features(X: np.ndarray, n_features: int) -> None:
    """Raise ``ValueError`` when ``X`` has a different number of columns than the model."""
    if X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features but the model was fitted on {n_features}; "
            "pass the same columns, in the same order, as at fit time."
        )
