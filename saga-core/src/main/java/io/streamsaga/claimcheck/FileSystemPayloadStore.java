package io.streamsaga.claimcheck;

import io.streamsaga.ConfigurationException;
import io.streamsaga.Sha256;
import io.streamsaga.claimcheck.spi.PayloadStore;
import io.streamsaga.spi.StoredKeys;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;

/**
 * A {@link PayloadStore} in a directory, with the JDK only. Each payload is the file {@code <id>.payload}
 * (written to a temporary file and moved into place atomically, so a reader never sees half a payload);
 * its last-modified time is its stored time; its holders are empty marker files under
 * {@code <id>.holders/}, named by a hash of the holder id (a holder holding U+0000 or a lone surrogate, or longer
 * than {@link StoredKeys#MAX_HOLDER_LENGTH}, is refused, as every store refuses it: {@link StoredKeys}). {@link #deleteStoredBefore} also deletes the
 * temporary files ({@code *.tmp}) last modified before the cutoff, which a crash during a write leaves; they are not
 * counted as payloads, and the bounded {@link #deleteStoredBefore(Instant, int)} deletes them only in a call that
 * deleted fewer payloads than its bound (the last batch of each run of the interceptor's sweep), so they never make a
 * run go on and are cleaned at the end of each run.
 *
 * <p>Thread-safe. {@link #put}, {@link #release} and {@link #deleteStoredBefore} hold an exclusive lock on
 * the file {@code .lock} in the directory ({@link FileChannel#lock()}), so several instances over one
 * directory, in one JVM or in several processes, never interleave: a release deleting the last hold cannot
 * delete a payload another instance is storing again. Processes are coordinated only where the file
 * system supports file locks (a local disk; not every network file system): otherwise use one writer
 * process, or a database-backed store.
 */
public final class FileSystemPayloadStore implements PayloadStore {
    private static final String PAYLOAD = ".payload";
    private static final String HOLDERS = ".holders";
    private static final String TEMP = ".tmp";
    private static final String LOCK = ".lock";
    /** How long to wait before trying again for the lock another instance in this JVM holds. */
    private static final long LOCK_RETRY_NANOS = TimeUnit.MILLISECONDS.toNanos(1);

    private final Path root;

    /** A store in {@code root}, created if missing. */
    public FileSystemPayloadStore(Path root) {
        this.root = Objects.requireNonNull(root, "root");
        try {
            Files.createDirectories(root);
        } catch (IOException e) {
            throw ClaimCheckException.storeFailure("-", "create directory " + root + " for", e);
        }
    }

    /** The directory of this store. */
    public Path root() {
        return root;
    }

    @Override
    public synchronized void put(String id, byte[] content, String holder, Instant now) {
        PayloadReference.requireValidId(id);
        Objects.requireNonNull(content, "content");
        Objects.requireNonNull(holder, "holder");
        // its marker is named by a hash of its UTF-8 bytes, in which a lone surrogate is '?': refused as every store does
        StoredKeys.requireStorable(holder, StoredKeys.MAX_HOLDER_LENGTH, "holder");
        Path payload = root.resolve(id + PAYLOAD);
        try (FileChannel lock = lockDirectory()) {
            if (!Files.exists(payload)) {
                Path temp = Files.createTempFile(root, id, TEMP);
                try {
                    Files.write(temp, content);
                    Files.move(temp, payload, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (IOException e) {
                    try {
                        Files.deleteIfExists(temp);
                    } catch (IOException cleanup) {
                        e.addSuppressed(cleanup); // the expiry sweep deletes it later
                    }
                    throw e;
                }
            }
            Files.setLastModifiedTime(payload, FileTime.from(now));
            Path holders = Files.createDirectories(root.resolve(id + HOLDERS));
            try {
                Files.createFile(holders.resolve(holderFile(holder)));
            } catch (FileAlreadyExistsException alreadyHeld) {
                // the same message stored its payload again (a publish retry): one hold
            }
        } catch (IOException e) {
            throw ClaimCheckException.storeFailure(id, "store", e);
        }
    }

    @Override
    public synchronized Optional<byte[]> get(String id) {
        PayloadReference.requireValidId(id);
        try {
            return Optional.of(Files.readAllBytes(root.resolve(id + PAYLOAD)));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            throw ClaimCheckException.storeFailure(id, "read", e);
        }
    }

    @Override
    public synchronized boolean release(String id, String holder) {
        PayloadReference.requireValidId(id);
        if (StoredKeys.isUnstorable(holder)) {
            return false; // put refuses such a holder; its hash would be that of another (its lone surrogate as '?')
        }
        Path holders = root.resolve(id + HOLDERS);
        try (FileChannel lock = lockDirectory()) {
            if (!Files.deleteIfExists(holders.resolve(holderFile(holder)))) {
                return false;
            }
            try (Stream<Path> remaining = Files.list(holders)) {
                if (remaining.findAny().isPresent()) {
                    return false;
                }
            }
            delete(id);
            return true;
        } catch (NoSuchFileException e) {
            return false;
        } catch (IOException e) {
            throw ClaimCheckException.storeFailure(id, "release", e);
        }
    }

    @Override
    public int deleteStoredBefore(Instant cutoff) {
        return deleteStoredBefore(cutoff, Integer.MAX_VALUE);
    }

    /**
     * Deletes at most {@code maxPayloads} payload files, stopping its pass over the directory at the bound, so that a
     * batch of the interceptor's sweep holds the lock and the scheduler's thread for that many only; the temporary
     * files a crash left are deleted only when fewer than {@code maxPayloads} payloads were, at the end of a run.
     */
    @Override
    public synchronized int deleteStoredBefore(Instant cutoff, int maxPayloads) {
        ConfigurationException.require(maxPayloads > 0, "maxPayloads must be positive, but was %s", maxPayloads);
        try (FileChannel lock = lockDirectory()) {
            return deleteStoredBeforeLocked(cutoff, maxPayloads);
        } catch (IOException e) {
            throw ClaimCheckException.storeFailure("*", "expire", e);
        }
    }

    private int deleteStoredBeforeLocked(Instant cutoff, int maxPayloads) {
        int deleted = 0;
        try (DirectoryStream<Path> files = Files.newDirectoryStream(root, "*" + PAYLOAD)) {
            for (Path file : files) {
                if (Files.getLastModifiedTime(file).toInstant().isBefore(cutoff)) {
                    String name = file.getFileName().toString();
                    delete(name.substring(0, name.length() - PAYLOAD.length()));
                    deleted++;
                    if (deleted == maxPayloads) {
                        return deleted; // a full batch: the temporary files wait for the run's last one
                    }
                }
            }
        } catch (IOException | UncheckedIOException e) {
            throw ClaimCheckException.storeFailure("*", "expire", e);
        }
        // Temporary files a crash left before moving them into place. Their time is the file system's (not
        // the caller's); none is in use here, since writes are serialised with this sweep.
        try (DirectoryStream<Path> files = Files.newDirectoryStream(root, "*" + TEMP)) {
            for (Path file : files) {
                if (Files.getLastModifiedTime(file).toInstant().isBefore(cutoff)) {
                    Files.deleteIfExists(file);
                }
            }
        } catch (IOException | UncheckedIOException e) {
            throw ClaimCheckException.storeFailure("*", "expire", e);
        }
        return deleted;
    }

    private void delete(String id) throws IOException {
        Path holders = root.resolve(id + HOLDERS);
        if (Files.isDirectory(holders)) {
            try (Stream<Path> files = Files.list(holders)) {
                for (Path file : (Iterable<Path>) files::iterator) {
                    Files.deleteIfExists(file);
                }
            }
            Files.deleteIfExists(holders);
        }
        Files.deleteIfExists(root.resolve(id + PAYLOAD));
    }

    /**
     * Locks the directory against the other instances over it: the returned channel holds the lock until it
     * is closed. File locks belong to the whole JVM, so another instance here holding it is not waited for
     * by the OS (an {@link OverlappingFileLockException}): this waits for it by trying again.
     */
    private FileChannel lockDirectory() throws IOException {
        FileChannel channel = FileChannel.open(root.resolve(LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        try {
            while (true) {
                try {
                    channel.lock();
                    return channel;
                } catch (OverlappingFileLockException heldInThisJvm) {
                    LockSupport.parkNanos(LOCK_RETRY_NANOS);
                }
            }
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /** Holder ids are message ids from the wire: hash them into safe file names. */
    private static String holderFile(String holder) {
        return Sha256.hex(holder.getBytes(StandardCharsets.UTF_8));
    }
}
