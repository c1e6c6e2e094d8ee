"""Batched non-negative least squares on the normal equations (torch)."""
from __future__ import annotations


def nnls_normal(Gm, h, n_nonneg: int, c0=None, iterations: int = 60):
    """Solve min_x 1/2 x^T G x - h^T x with x[:n_nonneg] >= 0 (the rest free) for a batch.

    ``Gm`` (B, C, C) symmetric positive (semi)definite, ``h`` (B, C); ``c0`` (B, C) a warm start.
    A primal-dual active-set method (Hintermueller, Ito & Kunisch, SIAM J Optim 13:865, 2002) on the
    Jacobi-scaled system: each step solves the equality-constrained problem on the current free set and
    re-reads the active set from the complementarity condition min(x, mu) = 0 (mu = G x - h); a spectrum
    is done when its set repeats, and then the KKT conditions hold exactly. Systems whose set still changes
    after ``iterations // 6`` steps (rare) finish with accelerated projected gradient (FISTA, Beck &
    Teboulle 2009) from their last iterate. Solves in double precision; returns (B, C) float64."""
    import torch
    f64 = torch.float64
    Bn, C = h.shape
    dev = h.device
    G64, h64 = Gm.to(f64), h.to(f64)
    scale = torch.sqrt(torch.diagonal(G64, dim1=1, dim2=2)).clamp_min(1e-300)  # Jacobi preconditioning
    Gs = G64 / scale[:, :, None] / scale[:, None, :]
    hs = h64 / scale
    nonneg = torch.zeros(C, dtype=torch.bool, device=dev)
    nonneg[:n_nonneg] = True
    eye = torch.eye(C, dtype=f64, device=dev)
    if c0 is None:
        z = torch.zeros_like(hs)
        free = torch.ones((Bn, C), dtype=torch.bool, device=dev)
    else:
        z = c0.to(f64) * scale
        z = torch.where(nonneg, z.clamp_min(0), z)
        free = ~nonneg | (z > 0)
    settled = torch.zeros(Bn, dtype=torch.bool, device=dev)
    for _ in range(max(1, iterations // 6)):
        fm = free.to(f64)
        Gf = Gs * fm[:, :, None] * fm[:, None, :] + torch.diag_embed(1 - fm) + 1e-12 * eye
        zn = torch.linalg.solve(Gf, (hs * fm)[..., None])[..., 0]
        mu = (Gs @ zn[..., None])[..., 0] - hs          # gradient: the multipliers where x = 0
        new_free = ~nonneg | (zn - mu > 0)
        same = (new_free == free).all(1)
        z = torch.where(settled[:, None], z, zn)
        settled = settled | same
        free = torch.where(settled[:, None], free, new_free)
        if bool(settled.all()):
            break
    if not bool(settled.all()):
        idx = torch.nonzero(~settled)[:, 0]
        Gi, hi = Gs[idx], hs[idx]
        lip = torch.linalg.eigvalsh(Gi)[:, -1:].clamp_min(1e-30)
        zi = torch.where(nonneg, z[idx].clamp_min(0), z[idx])
        xk, tk = zi.clone(), 1.0
        for _ in range(4 * iterations):
            g = (Gi @ zi[..., None])[..., 0] - hi
            xn = zi - g / lip
            xn = torch.where(nonneg, xn.clamp_min(0), xn)
            tn = (1 + (1 + 4 * tk * tk) ** 0.5) / 2
            zi = xn + ((tk - 1) / tn) * (xn - xk)
            xk, tk = xn, tn
        z[idx] = xk
    z = torch.where(nonneg, z.clamp_min(0), z)
    return z / scale
