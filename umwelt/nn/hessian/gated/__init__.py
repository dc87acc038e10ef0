r"""Hessian-vector products of a gated net with its gates held fixed, written out by hand.

With the gates held fixed (the M-step, THEORY.md §2), every hidden layer of a
:class:`~umwelt.nn.mlp.GatedMLP` or :class:`~umwelt.nn.vgg.GatedVGG` is linear in its input,

.. math::
    z_l = W_l * a_{l-1}, \qquad x_l = h_l \odot z_l, \qquad a_l = \mathrm{pool}(x_l),
    \qquad f = z_L,

with :math:`*` a bias-free convolution or linear map, :math:`h_l` a constant (the ReLU gates
:math:`1[z_l > 0]` at :math:`T = 0` and in ``"relu"`` mode, a stored sample at :math:`T > 0`,
:math:`1/2` for mean-field gates at :math:`T = \infty`) and ``pool`` a 2×2 max-pooling whose
choice of maxima is also held fixed. So :math:`f` is multilinear in the weights (THEORY.md §3)
and, with :math:`c_i = w_i \ell'_i` and :math:`d_i = w_i \ell''_i`,

.. math::
    Hv = \sum_i c_i\, \nabla_\theta (J_i v) + d_i\, (J_i v)\, \nabla_\theta f_i .

The first term is the circuit part (zero diagonal, THEORY.md §3), the second the Gauss–Newton
part. :math:`\ell'` and :math:`\ell''` are taken per example by autograd of the named loss
(:mod:`~umwelt.nn.losses`). With :math:`u_i = 1 - y_i f_i`: for the hinge :math:`c_i = -w_i y_i`
on the active examples and :math:`d_i = 0`; for the quadratic hinge :math:`c_i = -w_i y_i u_i`
and :math:`d_i = w_i` where :math:`u_i > 0`, both 0 elsewhere; for the logistic loss both are
non-zero everywhere.

The product is forward-over-reverse, by hand: the tangent pass and the adjoint pass of the
tangent,

.. math::
    \dot z_l = W_l * \dot a_{l-1} + V_l * a_{l-1}, \qquad
    \dot\delta_{l-1} = h_{l-1} \odot \mathrm{pool}^\top
        \big(W_l^\top \dot\delta_l + V_l^\top \delta_l\big), \qquad
    (Hv)_l = \dot\delta_l \otimes a_{l-1} + \delta_l \otimes \dot a_{l-1},

started from :math:`\dot a_0 = 0` and :math:`\dot\delta_L = d \odot \dot f`, where
:math:`\delta_l = \partial (c \cdot f) / \partial z_l` is the adjoint of the primal pass and
:math:`\otimes` the weight gradient of layer :math:`l` (``conv2d_weight``, or an outer product).

**The primal pass does not depend on** :math:`v`: the inputs :math:`a_{l-1}`, the gates, the
pooling choices, the adjoints :math:`\delta_l` and :math:`d` are computed once per batch and
kept (within a memory budget) for every later product at the same parameters. A product then
costs six convolution-sized operations per layer (:math:`W \dot a`, :math:`V a`,
:math:`W^\top \dot\delta`, :math:`V^\top \delta` and two weight gradients), against three for a
gradient, eight for ``torch.func``'s forward-over-reverse, which recomputes the primal pass and
the primal adjoint every time, and about nine for a double backward; nor is a max-pooling
recomputed (on CPU as dear as a convolution). Examples with :math:`c_i = d_i = 0` — an
inactive hinge or a satisfied quadratic hinge (:math:`y_i f_i \ge 1`), or a zero weight — have
no share in :math:`H` and are left out of the kept pass. On ``vgg12`` (one CPU thread, batch 32,
all examples with a share) a product measured 1.7 gradients at width 1/4 and 2.0 at full width,
against 2.8–3.3 for ``torch.func`` and 3.0–3.3 for a double backward.

**Block products.** :meth:`GatedProducts.product` takes ``k`` vectors in one tangent and one
adjoint pass: the primal pass is shared, the tangents are ``(B, k, ...)`` tensors, and each
term of a layer is one call for all ``k`` — :math:`V a` one convolution (or matmul) with the
``k`` weights stacked along the output channels, :math:`W \dot a` and
:math:`W^\top \dot\delta` one call with the ``k`` tangents stacked along the batch,
:math:`V^\top \delta` one call with the ``k`` weights side by side along the input channels,
:math:`\dot\delta \otimes a` and :math:`\delta \otimes \dot a` one weight gradient each with
the ``k`` adjoints (tangents) stacked along the channels. The gates, the pooling choices and the
kept examples are those of the single product, so ``matmat`` equals the columns' products to
round-off. The arithmetic is that of ``k`` products — every term is linear in :math:`v` — so a
block is faster only where the library's kernels run faster on the wider calls. On a CPU in
float64 (what ``umwelt hessian`` takes up to 50,000 parameters) torch's convolutions loop over the
examples with one small GEMM each, and :class:`_SlowConvMaps` reshapes each map into fewer,
larger GEMMs. Measured on ``vgg12`` (512 CIFAR-10 images, one thread, CPU time;
``umwelt bench hessian``): ``matmat(8)`` is 2.1× faster than 8 products at width 1/8 (2.9×
faster than the 8 products before blocks, which took the library's calls) and 1.3–1.7× at width
1/4 (2.2×). In float32 (oneDNN) a block runs no faster — 0.94× at width 1/8, 0.92× at 1/4 and
0.56× at full width for ``k = 8`` — oneDNN's convolutions gaining nothing per operation on the
stacked inputs, so a float32 ``matmat`` on a CPU takes its columns one by one
(:meth:`GatedProducts.product_columns`). Every term's arithmetic is ``k``-fold, so a block can
gain only from faster kernels on its wider calls; two of a layer's six terms
(:math:`W \dot a`, :math:`W^\top \dot\delta`) have no shared operand at all and run as
``k`` products do. What float32 gains on a CPU is in the single product instead: oneDNN's
backward-data convolution on few channels is slower than its forward, so
:class:`_OneDnnMaps` takes :math:`W^\top g` as the forward convolution of the flipped kernel
(a product 0.82 of the library's calls on 512 images, 0.93 on 2,000).

**Memory of a block.** Beyond the kept primal passes a block of ``k`` vectors on a chunk of
``m`` examples holds ``k·(m·t + u)`` bytes (:meth:`GatedProducts.block_memory`): ``t``
(:attr:`_Primal.tangent_bytes`) the tangents of one example — its layer inputs and
:data:`_TRANSIENT` times its widest layer (the unfolded inputs and outputs of a map) — and
``u`` (:attr:`GatedProducts.vector_bytes`) :data:`_WEIGHT_COPIES` parameter-sized tensors,
constants measured as peak resident memory in fresh processes (the peaks came to 0.4–1.0 of
the bound; less after a warm-up, the allocator reusing what it freed). The
columns of a block (:meth:`GatedProducts.columns`, at most :data:`MAX_BLOCK`) and the examples
of a chunk (:meth:`GatedProducts.chunk_examples`, at most :data:`BLOCK_ROWS` ``// k``) keep it
within the cache setting (:attr:`GatedProducts.block_bytes`: ``cache_bytes``, at least
:data:`MIN_BLOCK_BYTES`); e.g. 379 MB for ``k = 16`` at width 1/8 in float64, against 1 GiB by
default (measured peak: 122 MB).

The per-example entries of the bootstrap: :mod:`~umwelt.nn.hessian.gated.entries`.

The product is the same Hessian as :class:`~umwelt.nn.hessian.ModelHessian`'s other modes (to
round-off): the ReLU's second derivative and the hinge's vanish almost everywhere, the
quadratic hinge's is the step :math:`1[u_i > 0]` as autograd takes it, and the pooling and the
gates take the branches autograd takes. It applies only to the models whose forward pass it
knows (:func:`gated_layers` says why not, otherwise): a
:class:`~umwelt.nn.mlp.GatedMLP` (also :class:`~umwelt.nn.models.FlatMLP`) or a
:class:`~umwelt.nn.vgg.GatedVGG` whose forward is not overridden, every weight trainable and
nothing else, and gates that are fixed factors — not mean-field gates at :math:`0 < T < \infty`,
whose smooth :math:`z\,\sigma(z/T)` has a second derivative.

The package, along its concepts: :mod:`~umwelt.nn.hessian.gated.layers` (which models, as
:class:`GatedLayer` s), :mod:`~umwelt.nn.hessian.gated.maps` (the three maps of a weight layer
and the faster calls for them per dtype and device), :mod:`~umwelt.nn.hessian.gated.products`
(the kept primal pass, the block products, :class:`GatedProducts`) and
:mod:`~umwelt.nn.hessian.gated.entries` (per-example entries of unit vectors).
"""

from umwelt.nn.hessian.gated.layers import GatedLayer, gated_layers
from umwelt.nn.hessian.gated.products import DEFAULT_CACHE_BYTES, GatedProducts

__all__ = ["DEFAULT_CACHE_BYTES", "GatedLayer", "GatedProducts", "gated_layers"]
